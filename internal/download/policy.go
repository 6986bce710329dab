package download

import (
	"fmt"
	"net/url"
)

// PolicyError is returned when a download is refused because its content
// could not be verified.
type PolicyError struct {
	URL    string
	Reason string
}

func (e *PolicyError) Error() string { return e.Reason }

// CheckPolicy applies devbundle's one rule for unverified downloads to a
// remote URL:
//
//   - a known checksum: allowed (and Fetch verifies it);
//   - no checksum over HTTPS: allowed, with a warning naming the risk;
//   - no checksum over plain HTTP: refused with a *PolicyError unless
//     insecure is set, in which case it is allowed with a warning.
//
// Local files need no checksum and are not subject to this policy.
func CheckPolicy(rawURL string, sum Checksum, insecure bool) (warning string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("invalid URL %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("unsupported URL %q: only http and https downloads are supported", rawURL)
	}
	if !sum.IsZero() {
		return "", nil
	}
	if u.Scheme == "https" {
		return fmt.Sprintf("%q has no checksum: it is fetched over HTTPS but cannot be verified, so a compromised server could hand out a tampered file; pass --checksum TYPE:HEX to verify it", rawURL), nil
	}
	if insecure {
		return fmt.Sprintf("%q has no checksum and is fetched over plain HTTP (--insecure): anyone on the network path can tamper with it", rawURL), nil
	}
	return "", &PolicyError{URL: rawURL, Reason: fmt.Sprintf(
		"refusing to download %q over plain HTTP without a checksum: pass --checksum TYPE:HEX, use an https URL, or pass --insecure to accept the risk", rawURL)}
}
