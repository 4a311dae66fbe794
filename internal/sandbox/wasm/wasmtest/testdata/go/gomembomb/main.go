// Command gomembomb allocates until the Go runtime dies of out of memory
// (it prints "fatal error: out of memory" and exits with status 2).
package main

var keep [][]byte

func main() {
	for i := 0; ; i++ {
		b := make([]byte, 1<<20)
		b[0] = byte(i)
		keep = append(keep, b)
	}
}
