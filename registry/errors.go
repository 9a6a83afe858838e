package registry

import (
	"fmt"
	"net/http"
)

// Error is an answer of the REST API that is not a success: an HTTP status
// and Confluent's error code and message, sent as
// {"error_code":CODE,"message":MESSAGE}.
type Error struct {
	Status  int    `json:"-"`
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("registry: %d %s", e.Code, e.Message) }

// Confluent's error codes.
const (
	codeSubjectNotFound       = 40401
	codeVersionNotFound       = 40402
	codeSchemaNotFound        = 40403
	codeSubjectSoftDeleted    = 40404
	codeSubjectNotSoftDeleted = 40405
	codeVersionSoftDeleted    = 40406
	codeVersionNotSoftDeleted = 40407
	codeSubjectCompatNotSet   = 40408
	codeSubjectModeNotSet     = 40409
	codeIncompatible          = 409
	codeInvalidSchema         = 42201
	codeInvalidVersion        = 42202
	codeInvalidCompatibility  = 42203
	codeInvalidMode           = 42204
	codeOperationNotPermitted = 42205
	codeReferenceExists       = 42206
	codeInvalidSubject        = 42208
	codeStoreError            = 50001
	codeStoreTimeout          = 50002
)

func errorf(status, code int, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func errSubjectNotFound(s string) *Error {
	return errorf(http.StatusNotFound, codeSubjectNotFound, "Subject '%s' not found.", s)
}

func errVersionNotFound(s string, v int) *Error {
	if v == -1 {
		return errorf(http.StatusNotFound, codeVersionNotFound, "Version latest not found for subject '%s'.", s)
	}
	return errorf(http.StatusNotFound, codeVersionNotFound, "Version %d not found.", v)
}

func errSchemaNotFound(format string, args ...any) *Error {
	return errorf(http.StatusNotFound, codeSchemaNotFound, format, args...)
}

func errInvalidSchema(err error) *Error {
	return errorf(http.StatusUnprocessableEntity, codeInvalidSchema, "Invalid schema: %v", err)
}

func errNotPermitted(format string, args ...any) *Error {
	return errorf(http.StatusUnprocessableEntity, codeOperationNotPermitted, format, args...)
}

func errStore(err error) *Error {
	return errorf(http.StatusInternalServerError, codeStoreError, "Error while writing to the schema log: %v", err)
}
