package stream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
)

// ErrRefused is matched (errors.Is) by Read's error when the camera refused
// us in a way that retrying at once will not cure: wrong or missing
// credentials (401, 403, after the client has tried the URL's), a path the
// camera does not have (404, 454 Session Not Found), no video camd can read,
// a certificate that does not verify, or a host name that does not exist. A
// supervisor should retry such a camera on a long schedule, since cameras
// that lock an account after failed logins count every try.
//
// Connection refused, timeouts and resets are not refusals: a camera that
// is rebooting answers them for a while and then works.
var ErrRefused = errors.New("camera refused the connection")

// ErrUnsupportedCodec is returned (wrapped) by Read when the camera's video
// is in a codec camd cannot read.
var ErrUnsupportedCodec = errors.New("unsupported video codec")

// refusal marks err as a refusal when it is one, keeping its message.
func refusal(err error) error {
	if err == nil || errors.Is(err, ErrRefused) || !isRefusal(err) {
		return err
	}
	return &refusedError{err: err}
}

func isRefusal(err error) bool {
	code, ok := isSessionStatus(err)
	var sc liberrors.ErrClientBadStatusCode
	if errors.As(err, &sc) {
		code, ok = sc.Code, true
	}
	if ok {
		switch code {
		case base.StatusUnauthorized, base.StatusForbidden, base.StatusNotFound, base.StatusSessionNotFound:
			return true
		}
		return false
	}
	if errors.Is(err, ErrNoVideo) || errors.Is(err, ErrUnsupportedCodec) || errors.Is(err, ErrCertificate) {
		return true
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		dns       *net.DNSError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return true
	case errors.As(err, &dns):
		return dns.IsNotFound
	}
	return false
}

// refusedError is a refusal: its message is the cause's, and errors.Is
// matches both ErrRefused and the cause's chain.
type refusedError struct{ err error }

func (e *refusedError) Error() string        { return e.err.Error() }
func (e *refusedError) Unwrap() error        { return e.err }
func (e *refusedError) Is(target error) bool { return target == ErrRefused }
