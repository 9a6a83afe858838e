package pebblestore

// RawContents reads every key and value in the database, as Pebble sees
// them (what range deletions delete is gone), including expired segments
// that the stores' reads skip.
func RawContents(d *DB) (map[string]string, error) {
	it, err := d.db.NewIter(nil)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for it.First(); it.Valid(); it.Next() {
		out[string(it.Key())] = string(it.Value())
	}
	if err := it.Error(); err != nil {
		it.Close()
		return nil, err
	}
	return out, it.Close()
}
