package services

import "testing"

func TestUpstreamVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"20.10.24+dfsg1", "20.10.24"},
		{"20.10.5~ds1", "20.10.5"},
		{"17.03.0-ce", "17.03.0"},
		{"18.09.1-ce-beta1", "18.09.1"},
		{"24.0.7", "24.0.7"},
		{"v1.28.3", "v1.28.3"},
		{"v1.28.3+k3s1", "v1.28.3"},
		{"v1.27.6-gke.1248000", "v1.27.6"},
		{"v1.32.4-dispatcher", "v1.32.4"},
		{"v1.30.0-rc.1", "v1.30.0-rc.1"},
		{"v1.31.0-alpha.2", "v1.31.0-alpha.2"},
		{"v1.20.0+bd9e442", "v1.20.0"},
		{"3.11.0+0cbc58b", "3.11.0"},
		{"4.14.3", "4.14.3"},
		{"v4.14.0-202311021650.p0.g9b1e0d2.assembly.stream-9b1e0d2", "v4.14.0"},
		{"1.13.1", "1.13.1"},
		{"", ""},
		{"latest", ""},
		{"20.10.24 ", ""},
		{"1", ""},
	} {
		if got := UpstreamVersion(tc.in); got != tc.want {
			t.Errorf("UpstreamVersion(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
