package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Writes in a cluster of registries: see "Clusters" in the package doc.

// EndLog is a Log that tells where it ends. A registry that forwarded a
// write reads its log up to there before it answers; without it, it
// appends a NOOP marker and reads up to that.
type EndLog interface {
	Log
	// End returns the offset the next record appended will get.
	End(ctx context.Context) (int64, error)
}

// forwardedHeader marks a request one registry forwarded to another. Its
// receiver handles it even when it no longer thinks itself the leader,
// so that a request never goes round between two registries that
// disagree for a moment about who leads.
const forwardedHeader = "X-Runnel-Registry-Forwarded"

// Confluent's codes for a write a follower could not pass on.
const (
	codeForwardFailed = 50003
	codeUnknownLeader = 50004
)

// leads tells whether this registry takes writes itself; when it does
// not, it returns the leader's URL.
func (r *Registry) leads(ctx context.Context) (bool, string, error) {
	if r.cfg.Leader == nil {
		return true, "", nil
	}
	leader, err := r.cfg.Leader(ctx)
	if err != nil {
		return false, "", errorf(http.StatusInternalServerError, codeUnknownLeader, "Cannot find the leader of the schema log: %v", err)
	}
	if leader == r.cfg.Node {
		return true, "", nil
	}
	url := r.nodeURL(leader)
	if url == "" {
		// The leader's registry may have announced itself after this
		// one read the log (registries started together): read it to
		// its end before giving up on it.
		if err := r.catchUp(ctx); err != nil {
			return false, "", errorf(http.StatusInternalServerError, codeUnknownLeader, "Cannot read the schema log for the leader's address: %v", err)
		}
		url = r.nodeURL(leader)
	}
	if url == "" {
		return false, "", errorf(http.StatusInternalServerError, codeUnknownLeader, "The leader, node %d, serves no schema registry that this one knows of", leader)
	}
	return false, url, nil
}

// nodeURL is the URL node's registry announced in the log, or "".
func (r *Registry) nodeURL(node int32) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.st.nodes[node]
}

// serveWrite runs a write: here when this registry leads (after reading
// the log to its end, so it decides on every earlier write, whoever made
// it), or at the leader. It returns false when the caller is to run it
// here.
func (r *Registry) serveWrite(w http.ResponseWriter, req *http.Request) (handled bool) {
	if r.cfg.Leader == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(req.Context(), writeTimeout)
	defer cancel()
	fail := func(err error) bool {
		e := asError(err)
		writeJSON(w, e.Status, e)
		return true
	}
	self := req.Header.Get(forwardedHeader) != ""
	url := ""
	if !self {
		var err error
		if self, url, err = r.leads(ctx); err != nil {
			return fail(err)
		}
	}
	if self {
		if err := r.catchUp(ctx); err != nil {
			return fail(errStore(err))
		}
		return false
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return fail(errorf(http.StatusBadRequest, http.StatusBadRequest, "Cannot read the request body: %v", err))
	}
	fwd, err := http.NewRequestWithContext(ctx, req.Method, strings.TrimSuffix(url, "/")+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return fail(errorf(http.StatusInternalServerError, codeForwardFailed, "Error while forwarding the request to the leader: %v", err))
	}
	if ct := req.Header.Get("Content-Type"); ct != "" {
		fwd.Header.Set("Content-Type", ct)
	}
	fwd.Header.Set("Accept", ContentType)
	fwd.Header.Set(forwardedHeader, strconv.Itoa(int(r.cfg.Node)))
	resp, err := r.cfg.ForwardClient.Do(fwd)
	if err != nil {
		return fail(errorf(http.StatusInternalServerError, codeForwardFailed, "Error while forwarding the request to the leader at %s: %v", url, err))
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return fail(errorf(http.StatusInternalServerError, codeForwardFailed, "Error while reading the leader's answer: %v", err))
	}
	if resp.StatusCode < 300 {
		// Read our own write: what the leader wrote is in the log now.
		if err := r.catchUp(ctx); err != nil {
			return fail(errorf(http.StatusInternalServerError, codeStoreTimeout, "The leader took the write, but reading it back failed: %v", err))
		}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
	return true
}

// catchUp waits until the reader applied every record the log held when
// it was called.
func (r *Registry) catchUp(ctx context.Context) error {
	el, ok := r.log.(EndLog)
	if !ok {
		return r.appendAndWait(ctx, noopKey(), nil)
	}
	end, err := el.End(ctx)
	if err != nil {
		return fmt.Errorf("registry: end of the schema log: %w", err)
	}
	return r.waitApplied(ctx, end-1)
}
