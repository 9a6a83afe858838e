package registry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// ContentType is the media type of the API's bodies.
const ContentType = "application/vnd.schemaregistry.v1+json"

// maxBodyBytes bounds a request body; a schema larger than this is refused.
const maxBodyBytes = 16 << 20

// writeTimeout bounds how long a write waits for the log.
const writeTimeout = 30 * time.Second

// Handler returns the REST API as an http.Handler.
//
// Routes (Confluent Schema Registry API):
//
//	GET    /subjects                              ?deleted ?deletedOnly ?subjectPrefix
//	GET    /subjects/{s}/versions                 ?deleted ?deletedOnly
//	POST   /subjects/{s}/versions                 register; ?normalize
//	GET    /subjects/{s}/versions/{v}             ?deleted; v is a number or latest
//	GET    /subjects/{s}/versions/{v}/schema
//	GET    /subjects/{s}/versions/{v}/referencedby
//	DELETE /subjects/{s}/versions/{v}             ?permanent
//	POST   /subjects/{s}                          look a schema up; ?deleted ?normalize
//	DELETE /subjects/{s}                          ?permanent
//	GET    /schemas/ids/{id}                      and /schema, /subjects, /versions
//	GET    /schemas/types
//	GET    /schemas                               ?subjectPrefix ?deleted ?latestOnly
//	GET    /contexts                              the default context only
//	POST   /compatibility/subjects/{s}/versions/{v}   ?verbose
//	POST   /compatibility/subjects/{s}/versions       ?verbose
//	GET|PUT|DELETE /config, /config/{s}           ?defaultToGlobal
//	GET|PUT|DELETE /mode, /mode/{s}               ?force ?defaultToGlobal
//
// With Config.Leader set, the writes among them (POST .../versions,
// DELETE, PUT) go to the leader's registry when this one does not lead.
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(write bool, pattern string, f func(*http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, req *http.Request) {
			req.Body = http.MaxBytesReader(w, req.Body, maxBodyBytes)
			if write && r.serveWrite(w, req) {
				return
			}
			v, err := f(req)
			if err != nil {
				e := asError(err)
				writeJSON(w, e.Status, e)
				return
			}
			if raw, ok := v.(rawSchema); ok {
				w.Header().Set("Content-Type", ContentType)
				io.WriteString(w, string(raw))
				return
			}
			writeJSON(w, http.StatusOK, v)
		})
	}
	h := func(pattern string, f func(*http.Request) (any, error)) { handle(false, pattern, f) }
	// hw serves a write: at the leader when this registry does not lead.
	hw := func(pattern string, f func(*http.Request) (any, error)) { handle(true, pattern, f) }
	h("GET /{$}", func(*http.Request) (any, error) { return struct{}{}, nil })
	h("GET /subjects", func(q *http.Request) (any, error) {
		return r.Subjects(deletedParam(q), q.URL.Query().Get("subjectPrefix")), nil
	})
	h("GET /subjects/{subject}/versions", func(q *http.Request) (any, error) {
		return r.Versions(q.PathValue("subject"), deletedParam(q))
	})
	h("GET /schemas", func(q *http.Request) (any, error) {
		return r.Schemas(q.URL.Query().Get("subjectPrefix"), flag(q, "deleted"), flag(q, "latestOnly"))
	})
	// Schema contexts are not served: every subject is in the default
	// context, which is all this lists.
	h("GET /contexts", func(*http.Request) (any, error) { return []string{"."}, nil })
	hw("POST /subjects/{subject}/versions", func(q *http.Request) (any, error) {
		body, err := schemaBody(q)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(q.Context(), writeTimeout)
		defer cancel()
		return r.Register(ctx, q.PathValue("subject"), body, flag(q, "normalize"))
	})
	h("GET /subjects/{subject}/versions/{version}", func(q *http.Request) (any, error) {
		n, err := versionParam(q)
		if err != nil {
			return nil, err
		}
		return r.Version(q.PathValue("subject"), n, flag(q, "deleted"))
	})
	h("GET /subjects/{subject}/versions/{version}/schema", func(q *http.Request) (any, error) {
		n, err := versionParam(q)
		if err != nil {
			return nil, err
		}
		s, err := r.Version(q.PathValue("subject"), n, flag(q, "deleted"))
		return rawSchema(s.Schema), err
	})
	h("GET /subjects/{subject}/versions/{version}/referencedby", func(q *http.Request) (any, error) {
		n, err := versionParam(q)
		if err != nil {
			return nil, err
		}
		return r.ReferencedBy(q.PathValue("subject"), n)
	})
	hw("DELETE /subjects/{subject}/versions/{version}", func(q *http.Request) (any, error) {
		n, err := versionParam(q)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(q.Context(), writeTimeout)
		defer cancel()
		return r.DeleteVersion(ctx, q.PathValue("subject"), n, flag(q, "permanent"))
	})
	h("POST /subjects/{subject}", func(q *http.Request) (any, error) {
		body, err := schemaBody(q)
		if err != nil {
			return nil, err
		}
		return r.Lookup(q.PathValue("subject"), body, flag(q, "deleted"))
	})
	hw("DELETE /subjects/{subject}", func(q *http.Request) (any, error) {
		ctx, cancel := context.WithTimeout(q.Context(), writeTimeout)
		defer cancel()
		return r.DeleteSubject(ctx, q.PathValue("subject"), flag(q, "permanent"))
	})
	h("GET /schemas/ids/{id}", func(q *http.Request) (any, error) {
		id, err := idParam(q)
		if err != nil {
			return nil, err
		}
		s, err := r.SchemaByID(id)
		if err != nil {
			return nil, err
		}
		return struct {
			SchemaType string      `json:"schemaType,omitempty"`
			References []Reference `json:"references,omitempty"`
			Schema     string      `json:"schema"`
		}{s.SchemaType, s.References, s.Schema}, nil
	})
	h("GET /schemas/ids/{id}/schema", func(q *http.Request) (any, error) {
		id, err := idParam(q)
		if err != nil {
			return nil, err
		}
		s, err := r.SchemaByID(id)
		return rawSchema(s.Schema), err
	})
	h("GET /schemas/ids/{id}/subjects", func(q *http.Request) (any, error) {
		id, err := idParam(q)
		if err != nil {
			return nil, err
		}
		usage, err := r.IDUsage(id, flag(q, "deleted"))
		subjects := []string{}
		for _, u := range usage {
			if len(subjects) == 0 || subjects[len(subjects)-1] != u.Subject {
				subjects = append(subjects, u.Subject)
			}
		}
		return subjects, err
	})
	h("GET /schemas/ids/{id}/versions", func(q *http.Request) (any, error) {
		id, err := idParam(q)
		if err != nil {
			return nil, err
		}
		return r.IDUsage(id, flag(q, "deleted"))
	})
	h("GET /schemas/types", func(*http.Request) (any, error) { return []string{schemaTypeAvro}, nil })
	compat := func(all bool) func(q *http.Request) (any, error) {
		return func(q *http.Request) (any, error) {
			n := -1
			if !all {
				var err error
				if n, err = versionParam(q); err != nil {
					return nil, err
				}
			}
			body, err := schemaBody(q)
			if err != nil {
				return nil, err
			}
			res, err := r.CheckCompatibility(q.PathValue("subject"), n, all, body)
			if !flag(q, "verbose") {
				res.Messages = nil
			}
			return res, err
		}
	}
	h("POST /compatibility/subjects/{subject}/versions/{version}", compat(false))
	h("POST /compatibility/subjects/{subject}/versions", compat(true))

	getConfig := func(q *http.Request) (any, error) {
		return r.Config(q.PathValue("subject"), flag(q, "defaultToGlobal"))
	}
	putConfig := func(q *http.Request) (any, error) {
		var body struct {
			Compatibility string `json:"compatibility,omitempty"`
			Normalize     *bool  `json:"normalize,omitempty"`
		}
		if err := decode(q, &body); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(q.Context(), writeTimeout)
		defer cancel()
		if err := r.SetConfig(ctx, q.PathValue("subject"), body.Compatibility, body.Normalize); err != nil {
			return nil, err
		}
		return body, nil
	}
	deleteConfig := func(q *http.Request) (any, error) {
		ctx, cancel := context.WithTimeout(q.Context(), writeTimeout)
		defer cancel()
		prev, err := r.DeleteCompatibility(ctx, q.PathValue("subject"))
		return map[string]string{"compatibility": prev}, err
	}
	for _, p := range []string{"/config", "/config/{subject}"} {
		h("GET "+p, getConfig)
		hw("PUT "+p, putConfig)
		hw("DELETE "+p, deleteConfig)
	}
	getMode := func(q *http.Request) (any, error) {
		m, err := r.Mode(q.PathValue("subject"), flag(q, "defaultToGlobal"))
		return map[string]string{"mode": m}, err
	}
	putMode := func(q *http.Request) (any, error) {
		var body struct {
			Mode string `json:"mode"`
		}
		if err := decode(q, &body); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(q.Context(), writeTimeout)
		defer cancel()
		if err := r.SetMode(ctx, q.PathValue("subject"), body.Mode, flag(q, "force")); err != nil {
			return nil, err
		}
		return map[string]string{"mode": body.Mode}, nil
	}
	deleteMode := func(q *http.Request) (any, error) {
		ctx, cancel := context.WithTimeout(q.Context(), writeTimeout)
		defer cancel()
		prev, err := r.DeleteMode(ctx, q.PathValue("subject"))
		return map[string]string{"mode": prev}, err
	}
	for _, p := range []string{"/mode", "/mode/{subject}"} {
		h("GET "+p, getMode)
		hw("PUT "+p, putMode)
		hw("DELETE "+p, deleteMode)
	}
	h("/", func(q *http.Request) (any, error) {
		return nil, errorf(http.StatusNotFound, http.StatusNotFound, "HTTP 404 Not Found")
	})
	return mux
}

// rawSchema is a schema sent as its own text, not as a JSON string.
type rawSchema string

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error_code":50001,"message":"cannot encode the response"}`)
	}
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(status)
	w.Write(b)
}

// deletedParam reads ?deleted and ?deletedOnly: which versions a
// listing shows.
func deletedParam(q *http.Request) Deleted {
	switch {
	case flag(q, "deletedOnly"):
		return DeletedOnly
	case flag(q, "deleted"):
		return WithDeleted
	}
	return LiveOnly
}

func flag(q *http.Request, name string) bool {
	v, _ := strconv.ParseBool(q.URL.Query().Get(name))
	return v
}

// versionParam reads {version}: a positive number, or latest or -1 for
// the latest version (returned as -1).
func versionParam(q *http.Request) (int, error) {
	s := q.PathValue("version")
	if s == "latest" || s == "-1" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 1 {
		return 0, errorf(http.StatusUnprocessableEntity, codeInvalidVersion,
			"The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", s)
	}
	return int(n), nil
}

func idParam(q *http.Request) (int, error) {
	n, err := strconv.ParseInt(q.PathValue("id"), 10, 32)
	if err != nil || n < 1 {
		return 0, errSchemaNotFound("Schema %s not found", q.PathValue("id"))
	}
	return int(n), nil
}

func schemaBody(q *http.Request) (SchemaRequest, error) {
	var body SchemaRequest
	if err := decode(q, &body); err != nil {
		return body, err
	}
	return body, nil
}

// decode reads a JSON body; malformed JSON is a 400 with Confluent's
// error body, as its REST layer answers.
func decode(q *http.Request, v any) error {
	dec := json.NewDecoder(q.Body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge, "Request body larger than %d bytes", maxBodyBytes)
		}
		return errorf(http.StatusBadRequest, http.StatusBadRequest, "Unrecognizable JSON body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, http.StatusBadRequest, "Unrecognizable JSON body: trailing data after the object")
	}
	return nil
}
