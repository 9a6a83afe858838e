//go:build !unix

package log

import "os"

// dupFile cannot pin a file here: readers fall back to Read.
func dupFile(*os.File) (*os.File, error) { return nil, ErrNoPin }
