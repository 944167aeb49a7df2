package iampolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// member is one name/value pair of a JSON object, in document order.
type member struct {
	name  string
	value json.RawMessage
}

// decodeObject splits a JSON object into its members, refusing anything that is
// not an object, duplicate names (encoding/json would silently keep the last,
// which would let a reviewer and the evaluator read different policies) and
// trailing data.
func decodeObject(raw []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("must be a JSON object")
	}
	var out []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("bad JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("bad JSON: object key is not a string")
		}
		if seen[name] {
			return nil, fmt.Errorf("duplicate key %q", name)
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("bad JSON value for %q: %w", name, err)
		}
		out = append(out, member{name, v})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON object")
	}
	return out, nil
}

// firstByte returns the first non-space byte of a JSON value (0 if none).
func firstByte(raw []byte) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// stringOrArray reads a JSON string or a non-empty array of strings, the shape
// IAM allows for Action, Resource, principal values and the like.
func stringOrArray(raw json.RawMessage) ([]string, error) {
	switch firstByte(raw) {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []string{s}, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return nil, errors.New("empty array")
		}
		out := make([]string, 0, len(items))
		for i, it := range items {
			if firstByte(it) != '"' {
				return nil, fmt.Errorf("item %d is not a string", i)
			}
			var s string
			if err := json.Unmarshal(it, &s); err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, errors.New("must be a string or an array of strings")
	}
}

// scalarOrArray is stringOrArray for condition values, where IAM also takes
// JSON booleans and numbers ("Bool": {"aws:SecureTransport": false}); they are
// kept as their JSON text ("false", "10").
func scalarOrArray(raw json.RawMessage) ([]string, error) {
	scalar := func(it json.RawMessage) (string, error) {
		switch b := firstByte(it); {
		case b == '"':
			var s string
			err := json.Unmarshal(it, &s)
			return s, err
		case b == 't' || b == 'f':
			var v bool
			if err := json.Unmarshal(it, &v); err != nil {
				return "", err
			}
			if v {
				return "true", nil
			}
			return "false", nil
		case b == '-' || (b >= '0' && b <= '9'):
			var n json.Number
			if err := json.Unmarshal(it, &n); err != nil {
				return "", err
			}
			return n.String(), nil
		default:
			return "", errors.New("must be a string, number or boolean")
		}
	}
	if firstByte(raw) != '[' {
		s, err := scalar(raw)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, errors.New("empty array")
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		s, err := scalar(it)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

type jsonRaw = json.RawMessage

func unmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }

// jsonString reads a JSON string and nothing else.
func jsonString(raw []byte, s *string) error {
	if firstByte(raw) != '"' {
		return errors.New("must be a string")
	}
	return json.Unmarshal(raw, s)
}
