package process

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/gust-faas/gust/internal/gust"
)

// Code on disk. Prepare writes each function's code into a directory of its
// own (the sandbox mounts it read-only at /app): plain source as one file,
// an executable as "exec", a zip extracted. Everything that can be wrong
// with the code itself is found here, at create time, as a gust.KindInvalid
// error whose message tells the developer what to fix.

// codeDir is a function's prepared code.
type codeDir struct {
	dir   string // host directory
	entry string // file the launcher loads, relative to dir; "" for a Node package
	plain bool   // plain source (Node evaluates it non-strict, OpenWhisk-style)
}

// Limits on archives, against zip bombs and inode exhaustion.
const (
	DefaultMaxCodeBytes = 256 << 20 // bytes of extracted code
	maxZipEntries       = 20000
)

func invalid(format string, args ...any) error {
	return gust.Errorf(gust.KindInvalid, format, args...)
}

const noFollow = syscall.O_NOFOLLOW

// isZip reports whether code starts like a zip archive (a local file
// header, or the end record of an empty archive).
func isZip(code []byte) bool {
	return bytes.HasPrefix(code, []byte("PK\x03\x04")) || bytes.HasPrefix(code, []byte("PK\x05\x06"))
}

// writeCode lays out code for kind in dir, which exists and is empty.
func writeCode(dir string, kind string, code []byte, maxBytes int64) (*codeDir, error) {
	c := &codeDir{dir: dir}
	zipped := isZip(code)
	if zipped {
		if err := extractZip(dir, code, maxBytes); err != nil {
			return nil, err
		}
	}
	switch kind {
	case KindPython:
		c.entry = "__main__.py"
		if !zipped {
			if !utf8.Valid(code) {
				return nil, invalid("the Python source is not valid UTF-8 (a zip archive must start with PK)")
			}
			return c, writeFile(filepath.Join(dir, c.entry), code, 0o644)
		}
		if !isRegular(filepath.Join(dir, c.entry)) {
			return nil, invalid("the zip archive has no __main__.py at its top level: a Python action zip must have one")
		}
	case KindNode:
		if !zipped {
			if !utf8.Valid(code) {
				return nil, invalid("the JavaScript source is not valid UTF-8 (a zip archive must start with PK)")
			}
			c.entry, c.plain = "index.js", true
			return c, writeFile(filepath.Join(dir, c.entry), code, 0o644)
		}
		if !isRegular(filepath.Join(dir, "package.json")) && !isRegular(filepath.Join(dir, "index.js")) {
			return nil, invalid("the zip archive has neither package.json nor index.js at its top level")
		}
	case KindGo, KindNative:
		exe := filepath.Join(dir, "exec")
		if !zipped {
			if err := checkExecutable(kind, code); err != nil {
				return nil, err
			}
			return c, writeFile(exe, code, 0o755)
		}
		if !isRegular(exe) {
			return nil, invalid("the zip archive has no executable named exec at its top level")
		}
		head := make([]byte, 4096)
		f, err := os.Open(exe)
		if err != nil {
			return nil, fmt.Errorf("code: %w", err)
		}
		n, _ := io.ReadFull(f, head)
		f.Close()
		if err := checkExecutable(kind, head[:n]); err != nil {
			return nil, err
		}
		if err := os.Chmod(exe, 0o755); err != nil {
			return nil, fmt.Errorf("code: %w", err)
		}
	default:
		return nil, invalid("the kind %q is not run by the process sandbox", kind)
	}
	return c, nil
}

// checkExecutable refuses what cannot run: source code, other
// architectures, and 32-bit programs (whose syscalls seccomp kills).
func checkExecutable(kind string, code []byte) error {
	switch {
	case bytes.HasPrefix(code, []byte("#!")):
		return nil
	case !bytes.HasPrefix(code, []byte(elf.ELFMAG)):
		if kind == KindGo && bytes.Contains(code, []byte("package ")) {
			return invalid("Go source is not compiled by Gust: upload a linux/%s executable that speaks the actionloop protocol (or a zip with it as exec)", runtime.GOARCH)
		}
		return invalid("the code is not an executable: expected a linux/%s ELF binary, a #! script, or a zip with an executable named exec", runtime.GOARCH)
	}
	if len(code) < 20 {
		return invalid("the executable is truncated")
	}
	if elf.Class(code[elf.EI_CLASS]) != elf.ELFCLASS64 {
		return invalid("the executable is 32-bit; only 64-bit linux/%s programs can run", runtime.GOARCH)
	}
	if elf.Data(code[elf.EI_DATA]) != elf.ELFDATA2LSB {
		return invalid("the executable is big-endian; only linux/%s programs can run", runtime.GOARCH)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
	if m := elf.Machine(binary.LittleEndian.Uint16(code[18:20])); m != want {
		return invalid("the executable is for %v; this invoker runs linux/%s programs", m, runtime.GOARCH)
	}
	return nil
}

// extractZip extracts code into dir. Entries must stay inside dir
// ("zip slip": absolute names and ".." are refused, not rewritten: an
// archive that tries it is broken or hostile). Regular files are written
// before symlinks are created, and with O_NOFOLLOW|O_EXCL, so no entry
// can be written through a link. Sizes are checked against maxBytes both
// as declared and as actually inflated.
func extractZip(dir string, code []byte, maxBytes int64) error {
	zr, err := zip.NewReader(bytes.NewReader(code), int64(len(code)))
	if err != nil {
		return invalid("the code is not a valid zip archive: %v", err)
	}
	if len(zr.File) > maxZipEntries {
		return invalid("the zip archive has %d entries; the limit is %d", len(zr.File), maxZipEntries)
	}
	var declared uint64
	for _, f := range zr.File {
		if err := checkZipName(f.Name); err != nil {
			return err
		}
		declared += f.UncompressedSize64
	}
	if declared > uint64(maxBytes) {
		return invalid("the zip archive expands to %d bytes; the limit is %d", declared, maxBytes)
	}
	budget := maxBytes
	var links []*zip.File
	for _, f := range zr.File {
		name := path.Clean(f.Name)
		target := filepath.Join(dir, filepath.FromSlash(name))
		mode := f.Mode()
		switch {
		case name == ".":
			continue
		case mode&fs.ModeSymlink != 0:
			links = append(links, f)
			continue
		case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
			if err := os.MkdirAll(target, 0o755); err != nil {
				return invalid("the zip archive cannot be extracted: %v", cleanErr(err, dir))
			}
			continue
		case !mode.IsRegular():
			return invalid("the zip archive entry %q is not a regular file, directory or symlink", f.Name)
		}
		n, err := extractFile(f, target, budget)
		if err != nil {
			return err
		}
		budget -= n
	}
	for _, f := range links {
		target := filepath.Join(dir, filepath.FromSlash(path.Clean(f.Name)))
		rc, err := f.Open()
		if err != nil {
			return invalid("the zip archive entry %q is corrupt: %v", f.Name, err)
		}
		dest, err := io.ReadAll(io.LimitReader(rc, 4096))
		rc.Close()
		if err != nil {
			return invalid("the zip archive entry %q is corrupt: %v", f.Name, err)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return invalid("the zip archive cannot be extracted: %v", cleanErr(err, dir))
		}
		// The link resolves only inside the sandbox, which sees nothing but
		// its own minimal root; the host never follows it.
		if err := os.Symlink(string(dest), target); err != nil {
			return invalid("the zip archive cannot be extracted: %v", cleanErr(err, dir))
		}
	}
	return nil
}

// checkZipName refuses names that leave the extraction directory.
func checkZipName(name string) error {
	clean := path.Clean(strings.ReplaceAll(name, `\`, "/"))
	if name == "" || strings.HasPrefix(name, "/") || strings.HasPrefix(clean, "/") ||
		clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(name, "\x00") ||
		(len(name) > 1 && name[1] == ':') {
		return invalid("the zip archive has an entry outside the action's directory: %q", name)
	}
	return nil
}

func extractFile(f *zip.File, target string, budget int64) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return 0, invalid("the zip archive cannot be extracted: %v", err)
	}
	rc, err := f.Open()
	if err != nil {
		return 0, invalid("the zip archive entry %q is corrupt: %v", f.Name, err)
	}
	defer rc.Close()
	perm := os.FileMode(0o644)
	if f.Mode()&0o111 != 0 {
		perm = 0o755
	}
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, perm)
	if err != nil {
		return 0, invalid("the zip archive entry %q cannot be extracted (duplicate name?)", f.Name)
	}
	n, err := io.Copy(out, io.LimitReader(rc, budget+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	switch {
	case n > budget:
		return 0, invalid("the zip archive expands to more than its declared size; the limit is exceeded")
	case errors.Is(err, zip.ErrChecksum), errors.Is(err, zip.ErrFormat), errors.Is(err, zip.ErrAlgorithm):
		return 0, invalid("the zip archive entry %q is corrupt: %v", f.Name, err)
	case err != nil:
		return 0, invalid("the zip archive entry %q is corrupt: %v", f.Name, err)
	}
	return n, nil
}

// fixPerms makes the tree under dir readable by the sandbox's user whatever
// the host's umask: directories 0755, files 0644, or 0755 when executable
// by their owner.
func fixPerms(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return nil
		case d.IsDir():
			return os.Chmod(p, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := os.FileMode(0o644)
		if info.Mode()&0o100 != 0 {
			perm = 0o755
		}
		return os.Chmod(p, perm)
	})
}

// cleanErr removes the host directory from an error shown to developers.
func cleanErr(err error, dir string) string {
	return strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
}

func isRegular(p string) bool {
	st, err := os.Lstat(p)
	return err == nil && st.Mode().IsRegular()
}

func writeFile(p string, data []byte, perm os.FileMode) error {
	if err := os.WriteFile(p, data, perm); err != nil {
		return fmt.Errorf("code: %w", err)
	}
	return os.Chmod(p, perm) // not reduced by the umask
}

// linkTree fills dst (empty) with hard links to src's files, so that a
// stem cell, whose /app is bound to dst, sees the function's code without
// a copy. Across file systems it copies.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			dest, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(dest, target)
		}
		if err := os.Link(p, target); err == nil {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return writeFile(target, data, info.Mode().Perm())
	})
}
