package ring

import (
	"errors"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default", DefaultConfig(), true},
		{"zero means defaults", Config{}, true},
		{"one partition", Config{Partitions: 1, Tokens: 1}, true},
		{"max partitions", Config{Partitions: MaxPartitions}, true},
		{"max tokens", Config{Tokens: MaxTokens}, true},
		{"not a power of two", Config{Partitions: 100}, false},
		{"negative partitions", Config{Partitions: -256}, false},
		{"too many partitions", Config{Partitions: 2 * MaxPartitions}, false},
		{"negative tokens", Config{Tokens: -1}, false},
		{"too many tokens", Config{Tokens: MaxTokens + 1}, false},
		{"legacy", LegacyConfig(), true},
		{"claim", Config{Mode: ModeClaim}, true},
		{"unknown mode", Config{Mode: ModeClaim + 1}, false},
		{"max replicas", Config{Replicas: MaxReplicas}, true},
		{"too many replicas", Config{Replicas: MaxReplicas + 1}, false},
		{"negative replicas", Config{Replicas: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.cfg
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate error %v does not wrap ErrInvalidConfig", err)
			}
			if tc.cfg.Partitions != before.Partitions || tc.cfg.Tokens != before.Tokens {
				t.Error("Validate changed the config")
			}
		})
	}
	if d := DefaultConfig(); d.Mode != ModeClaim || d.Partitions != DefaultPartitions || d.Tokens != DefaultTokens || d.Replicas != DefaultReplicas || d.Hash != nil {
		t.Errorf("DefaultConfig = %+v", d)
	}
	for m, want := range map[Mode]string{0: "tokens", ModeTokens: "tokens", ModeClaim: "claim", 9: "Mode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", m, got, want)
		}
	}
}
