package ring

import (
	"testing"

	"github.com/quorumkv/quorumkv/internal/validtest"
)

func TestConfigValidate(t *testing.T) {
	validtest.Table[Config]{
		Base:    func() Config { return Config{} },
		Invalid: ErrInvalidConfig,
		Same: func(a, b Config) bool {
			return a.Partitions == b.Partitions && a.Tokens == b.Tokens
		},
		Cases: []validtest.Case[Config]{
			{"default", validtest.To(DefaultConfig()), true},
			{"zero means defaults", validtest.To(Config{}), true},
			{"one partition", validtest.To(Config{Partitions: 1, Tokens: 1}), true},
			{"max partitions", validtest.To(Config{Partitions: MaxPartitions}), true},
			{"max tokens", validtest.To(Config{Tokens: MaxTokens}), true},
			{"not a power of two", validtest.To(Config{Partitions: 100}), false},
			{"negative partitions", validtest.To(Config{Partitions: -256}), false},
			{"too many partitions", validtest.To(Config{Partitions: 2 * MaxPartitions}), false},
			{"negative tokens", validtest.To(Config{Tokens: -1}), false},
			{"too many tokens", validtest.To(Config{Tokens: MaxTokens + 1}), false},
			{"legacy", validtest.To(LegacyConfig()), true},
			{"claim", validtest.To(Config{Mode: ModeClaim}), true},
			{"unknown mode", validtest.To(Config{Mode: ModeClaim + 1}), false},
			{"max replicas", validtest.To(Config{Replicas: MaxReplicas}), true},
			{"too many replicas", validtest.To(Config{Replicas: MaxReplicas + 1}), false},
			{"negative replicas", validtest.To(Config{Replicas: -1}), false},
		},
	}.Run(t)
	if d := DefaultConfig(); d.Mode != ModeClaim || d.Partitions != DefaultPartitions || d.Tokens != DefaultTokens || d.Replicas != DefaultReplicas || d.Hash != nil {
		t.Errorf("DefaultConfig = %+v", d)
	}
	for m, want := range map[Mode]string{0: "tokens", ModeTokens: "tokens", ModeClaim: "claim", 9: "Mode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", m, got, want)
		}
	}
}
