package clibins

// pin is a known SHA-256 of an official download, with where it came from.
type pin struct {
	sha256 string
	source string
}

// pinnedSHA256 holds SHA-256 digests of docker's static archives, keyed by
// their path under download.docker.com (for example
// "linux/static/stable/x86_64/docker-24.0.7.tgz"); docker publishes no
// checksum files. A pinned digest is verified like a published one, also
// when the archive comes from a mirror.
//
// Every entry must cite where its digest came from (a download of the
// official file whose digest was computed and cross-checked, a signed
// package's metadata...). The table is empty: the machines devbundle is
// built on have no access to download.docker.com, and no digest may be
// written down from memory. Until entries are added, docker downloads fall
// under the policy for unverified downloads (HTTPS only, with a warning;
// plain HTTP only with --insecure). Tests pass their own table through
// InstallOptions.Pinned.
func pinnedSHA256() map[string]pin {
	return map[string]pin{}
}
