package rtsp

// errDrained is what a playing connection's Read says when nothing more is
// queued. It is a temporary timeout as net.Error sees it, so that TLS keeps
// a record it has only part of and reads on later.
var errDrained error = drainedError{}

type drainedError struct{}

func (drainedError) Error() string   { return "no more data queued" }
func (drainedError) Timeout() bool   { return true }
func (drainedError) Temporary() bool { return true }
