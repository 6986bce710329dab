package cmdutil

import (
	"github.com/devbundle/devbundle/services"
)

// Services returns the registry of every service devbundle knows.
func (f *Factory) Services() *services.Registry {
	return services.NewRegistry()
}
