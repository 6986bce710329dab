package cmdutil

import (
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/services/docker"
	"github.com/devbundle/devbundle/services/kubernetes"
	"github.com/devbundle/devbundle/services/openshift"
)

// Services returns the registry of every service devbundle knows.
func (f *Factory) Services() *services.Registry {
	return services.NewRegistry(
		docker.New(docker.Options{}),
		kubernetes.New(kubernetes.Options{}),
		openshift.New(openshift.Options{}),
	)
}
