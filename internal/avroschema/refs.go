package avroschema

import "fmt"

// Reference names a schema, by registry subject and version, whose named
// types a schema uses (Confluent's schema references).
type Reference struct {
	Name    string
	Subject string
	Version int
}

// Fetch returns the text and references of a subject's version.
type Fetch func(subject string, version int) (text string, refs []Reference, err error)

// maxRefDepth bounds chains of references.
const maxRefDepth = 32

// ParseWithReferences parses a schema whose references are loaded with
// fetch (and theirs in turn, each once) and put in scope first, as a
// registry client must to read data written with it. With no references
// it is ParseChecked.
func ParseWithReferences(text string, refs []Reference, fetch Fetch) (*Parsed, error) {
	names := Names{}
	if err := loadRefs(refs, fetch, names, map[Reference]bool{}, 0); err != nil {
		return nil, err
	}
	return ParseChecked(text, names)
}

func loadRefs(refs []Reference, fetch Fetch, names Names, loaded map[Reference]bool, depth int) error {
	if len(refs) > 0 && depth >= maxRefDepth {
		return fmt.Errorf("avro: references nested deeper than %d", maxRefDepth)
	}
	for _, ref := range refs {
		key := Reference{Subject: ref.Subject, Version: ref.Version}
		if loaded[key] {
			continue
		}
		loaded[key] = true
		text, sub, err := fetch(ref.Subject, ref.Version)
		if err != nil {
			return fmt.Errorf("avro: reference %q (%s version %d): %w", ref.Name, ref.Subject, ref.Version, err)
		}
		if err := loadRefs(sub, fetch, names, loaded, depth+1); err != nil {
			return err
		}
		if _, err := Parse(text, names); err != nil {
			return fmt.Errorf("avro: reference %q: %w", ref.Name, err)
		}
	}
	return nil
}
