package excerpt

import "testing"

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc..."},
		{"abcd", 0, "..."},
	} {
		if got := Of(tc.in, tc.n); got != tc.want {
			t.Errorf("Of(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
		if got := Of([]byte(tc.in), tc.n); got != tc.want {
			t.Errorf("Of([]byte(%q), %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
