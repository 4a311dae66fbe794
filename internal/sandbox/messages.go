package sandbox

import "fmt"

// Messages of activations that breached a limit, shared by every backend.
// They are OpenWhisk's texts, which clients and tests match on, with the
// limit also named in Gust's words
// ("timeout of N ms exceeded", "memory limit of N MB exceeded").

// TimeoutMessage is the error of a call that ran past its time limit of ms
// milliseconds.
func TimeoutMessage(ms int64) string {
	return fmt.Sprintf("The action exceeded its time limits of %[1]d milliseconds (timeout of %[1]d ms exceeded).", ms)
}

// MemoryMessage is the error of a call whose instance ran out of its mb
// megabytes of memory.
func MemoryMessage(mb int) string {
	return fmt.Sprintf("The action exhausted its memory and was aborted (memory limit of %d MB exceeded).", mb)
}

// TooLargeMessage is the error of a call whose result of size bytes is over
// limit.
func TooLargeMessage(size, limit int) string {
	return fmt.Sprintf("The action produced a response that exceeded the allowed length: %d > %d bytes.", size, limit)
}
