package mqttcore

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxTopicLength is the longest topic name or filter: a UTF-8 string in MQTT
// is prefixed by a two-byte length (MQTT 5 §1.5.4).
const MaxTopicLength = 65535

// sharePrefix introduces a shared subscription filter (MQTT 5 §4.8.2).
const sharePrefix = "$share/"

// ValidateTopic reports whether name may be used as the topic of a PUBLISH
// (MQTT 5 §4.7.3): at least one character, at most MaxTopicLength bytes,
// well-formed UTF-8 without U+0000, and no wildcard characters. Empty levels
// ("a//b", "/a") are legal.
func ValidateTopic(name string) error {
	if err := validateString(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTopic, err)
	}
	if i := strings.IndexAny(name, "+#"); i >= 0 {
		return fmt.Errorf("%w: wildcard %q at byte %d", ErrInvalidTopic, name[i], i)
	}
	return nil
}

// ValidateFilter reports whether filter may be subscribed to (MQTT 5 §4.7.1
// and §4.7.3), including the shared subscription form $share/{group}/{filter}
// (§4.8.2). '+' must occupy a whole level, '#' must occupy the whole last
// level.
func ValidateFilter(filter string) error {
	_, _, err := ParseShared(filter)
	return err
}

// ParseShared splits a topic filter into its share group and the filter
// proper, validating both. For a filter that is not shared, group is empty
// and inner equals filter. A share group is at least one character and holds
// none of '/', '+' and '#'; the inner filter follows the ordinary rules
// (MQTT 5 §4.8.2).
func ParseShared(filter string) (group, inner string, err error) {
	if err := validateString(filter); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrInvalidFilter, err)
	}
	inner = filter
	if strings.HasPrefix(filter, sharePrefix) {
		rest := filter[len(sharePrefix):]
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			return "", "", fmt.Errorf("%w: shared subscription %q has no filter after the group", ErrInvalidFilter, filter)
		}
		group, inner = rest[:slash], rest[slash+1:]
		if group == "" {
			return "", "", fmt.Errorf("%w: shared subscription %q has an empty group", ErrInvalidFilter, filter)
		}
		if strings.ContainsAny(group, "+#") {
			return "", "", fmt.Errorf("%w: share group %q holds a wildcard", ErrInvalidFilter, group)
		}
		if inner == "" {
			return "", "", fmt.Errorf("%w: shared subscription %q has an empty filter", ErrInvalidFilter, filter)
		}
	}
	if err := validateWildcards(inner); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrInvalidFilter, err)
	}
	return group, inner, nil
}

// validateWildcards checks the placement of '+' and '#' (MQTT 5 §4.7.1).
func validateWildcards(filter string) error {
	for i := 0; i < len(filter); i++ {
		c := filter[i]
		if c != '+' && c != '#' {
			continue
		}
		if i > 0 && filter[i-1] != '/' {
			return fmt.Errorf("wildcard %q at byte %d does not start a level", c, i)
		}
		if c == '#' && i != len(filter)-1 {
			return fmt.Errorf("'#' at byte %d is not the last character", i)
		}
		if c == '+' && i+1 < len(filter) && filter[i+1] != '/' {
			return fmt.Errorf("'+' at byte %d does not end its level", i)
		}
	}
	return nil
}

// validateString applies the rules every MQTT topic string shares (MQTT 5
// §1.5.4, §4.7.3).
func validateString(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > MaxTopicLength:
		return fmt.Errorf("%d bytes, longer than %d", len(s), MaxTopicLength)
	case !utf8.ValidString(s):
		return fmt.Errorf("not well-formed UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("holds U+0000")
	}
	return nil
}
