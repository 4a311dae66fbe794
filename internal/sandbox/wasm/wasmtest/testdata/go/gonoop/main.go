// Command gonoop is the smallest Gust reactor: every call returns {}.
// Build with -buildmode=c-shared.
package main

import "unsafe"

var (
	in  []byte
	out = []byte("{}")
)

//go:wasmexport gust_alloc
func gustAlloc(size uint32) unsafe.Pointer {
	in = make([]byte, size)
	return unsafe.Pointer(unsafe.SliceData(in))
}

//go:wasmexport gust_handle
func gustHandle(n uint32) uint64 {
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(out))))<<32 | uint64(len(out))
}

func main() {}
