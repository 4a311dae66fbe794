//go:build linux

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
	"unicode/utf8"

	"golang.org/x/sys/unix"

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

// maxZipEntries bounds an archive's entries, against inode exhaustion.
// (DefaultMaxCodeBytes bounds their size, against zip bombs.)
const maxZipEntries = 20000

func invalid(format string, args ...any) error {
	return gust.Errorf(gust.KindInvalid, format, args...)
}

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
// archive that tries it is broken or hostile), and nothing is created
// through a link: an entry beneath a symlink entry of the same archive is
// refused by name, and every path is resolved one component at a time
// from dir with O_NOFOLLOW, so even a link this check missed is never
// followed on the host. Symlinks are created last. Sizes are checked
// against maxBytes both as declared and as actually inflated.
func extractZip(dir string, code []byte, maxBytes int64) error {
	zr, err := zip.NewReader(bytes.NewReader(code), int64(len(code)))
	if err != nil {
		return invalid("the code is not a valid zip archive: %v", err)
	}
	if len(zr.File) > maxZipEntries {
		return invalid("the zip archive has %d entries; the limit is %d", len(zr.File), maxZipEntries)
	}
	var declared uint64
	links := map[string]bool{}
	for _, f := range zr.File {
		if err := checkZipName(f.Name); err != nil {
			return err
		}
		declared += f.UncompressedSize64
		if f.Mode()&fs.ModeSymlink != 0 {
			links[path.Clean(f.Name)] = true
		}
	}
	if declared > uint64(maxBytes) {
		return invalid("the zip archive expands to %d bytes; the limit is %d", declared, maxBytes)
	}
	for _, f := range zr.File {
		for p := path.Dir(path.Clean(f.Name)); p != "."; p = path.Dir(p) {
			if links[p] {
				return invalid("the zip archive entry %q is inside %q, which is a symlink: an archive may not extract anything through a link", f.Name, p)
			}
		}
	}
	x, err := newExtractor(dir)
	if err != nil {
		return err
	}
	defer x.close()
	budget := maxBytes
	var symlinks []*zip.File
	for _, f := range zr.File {
		name := path.Clean(f.Name)
		mode := f.Mode()
		switch {
		case name == ".":
			continue
		case mode&fs.ModeSymlink != 0:
			symlinks = append(symlinks, f)
			continue
		case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
			if _, err := x.dir(name); err != nil {
				return cannotExtract(f, err)
			}
			continue
		case !mode.IsRegular():
			return invalid("the zip archive entry %q is not a regular file, directory or symlink", f.Name)
		}
		n, err := x.file(f, name, budget)
		if err != nil {
			return err
		}
		budget -= n
	}
	for _, f := range symlinks {
		rc, err := f.Open()
		if err != nil {
			return invalid("the zip archive entry %q is corrupt: %v", f.Name, err)
		}
		dest, err := io.ReadAll(io.LimitReader(rc, 4096))
		rc.Close()
		if err != nil {
			return invalid("the zip archive entry %q is corrupt: %v", f.Name, err)
		}
		// The link resolves only inside the sandbox, which sees nothing but
		// its own minimal root; the host never follows it.
		if err := x.symlink(path.Clean(f.Name), string(dest)); err != nil {
			return cannotExtract(f, err)
		}
	}
	return nil
}

// extractor creates the entries of an archive beneath one directory.
type extractor struct {
	root int            // the extraction directory
	dirs map[string]int // open directories beneath it, by path
}

// maxOpenDirs bounds the directories an extractor keeps open.
const maxOpenDirs = 256

func newExtractor(dir string) (*extractor, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("code: %w", err)
	}
	return &extractor{root: fd, dirs: map[string]int{}}, nil
}

func (x *extractor) close() {
	x.forget()
	unix.Close(x.root)
}

// forget closes the open directories.
func (x *extractor) forget() {
	for _, fd := range x.dirs {
		unix.Close(fd)
	}
	clear(x.dirs)
}

// dir returns a descriptor of the directory rel (a clean, relative,
// slash-separated path) beneath the root, creating what is missing. Each
// component is opened relative to its parent with O_NOFOLLOW|O_DIRECTORY,
// so a symlink anywhere on the way fails (ENOTDIR) instead of being
// followed. The descriptor is the extractor's, valid until the next call.
// Directories stay open for the next entries (archives list many files of
// few directories), up to maxOpenDirs.
func (x *extractor) dir(rel string) (int, error) {
	if rel == "." {
		return x.root, nil
	}
	if fd, ok := x.dirs[rel]; ok {
		return fd, nil
	}
	parent, err := x.dir(path.Dir(rel))
	if err != nil {
		return -1, err
	}
	base := path.Base(rel)
	if err := unix.Mkdirat(parent, base, 0o755); err != nil && err != unix.EEXIST {
		return -1, err
	}
	fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if len(x.dirs) >= maxOpenDirs {
		x.forget() // parent included: it has served
	}
	x.dirs[rel] = fd
	return fd, nil
}

// file extracts the regular file f as rel, inflating at most budget
// bytes, and returns its size.
func (x *extractor) file(f *zip.File, rel string, budget int64) (int64, error) {
	parent, err := x.dir(path.Dir(rel))
	if err != nil {
		return 0, cannotExtract(f, err)
	}
	perm := uint32(0o644)
	if f.Mode()&0o111 != 0 {
		perm = 0o755
	}
	// O_EXCL: a duplicate name fails rather than overwriting (or, were the
	// name a link, writing through it).
	fd, err := unix.Openat(parent, path.Base(rel), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return 0, cannotExtract(f, err)
	}
	out := os.NewFile(uintptr(fd), rel)
	rc, err := f.Open()
	if err != nil {
		out.Close()
		return 0, invalid("the zip archive entry %q is corrupt: %v", f.Name, err)
	}
	defer rc.Close()
	n, err := io.Copy(out, io.LimitReader(rc, budget+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	switch {
	case n > budget:
		return 0, invalid("the zip archive expands to more than its declared size; the limit is exceeded")
	case err != nil:
		return 0, invalid("the zip archive entry %q is corrupt: %v", f.Name, err)
	}
	return n, nil
}

// symlink creates rel as a symlink to dest.
func (x *extractor) symlink(rel, dest string) error {
	parent, err := x.dir(path.Dir(rel))
	if err != nil {
		return err
	}
	return unix.Symlinkat(dest, parent, path.Base(rel))
}

// cannotExtract explains why entry f could not be created.
func cannotExtract(f *zip.File, err error) error {
	why := err.Error()
	switch {
	case errors.Is(err, unix.EEXIST):
		why = "another entry has the same name"
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
		// A file, or a link: O_NOFOLLOW|O_DIRECTORY refuses both.
		why = "its path goes through an entry that is not a directory"
	}
	return invalid("the zip archive entry %q cannot be extracted: %s", f.Name, why)
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

// Code on the host is not for other host users to read: a function's
// files may hold its secrets. They belong to root and to the sandbox's
// group (the host gid its gid 1000 maps to, Backend.codeGID), without
// permissions for others: directories 0750, files 0640, executables 0750.
// The sandbox reads them through its group; its init helper, which binds
// them, needs only to search their parents. The sandbox owns nothing, so
// it could not change the permissions even were /app writable.
const (
	codeDirPerm  = 0o750
	codeFilePerm = 0o640
	codeExecPerm = 0o750
)

// codePerm is the permission of a code file whose mode was m.
func codePerm(m fs.FileMode) os.FileMode {
	if m&0o100 != 0 {
		return codeExecPerm
	}
	return codeFilePerm
}

// own gives p to root and group gid with permission perm (not reduced by
// the umask).
func own(p string, gid int, perm os.FileMode) error {
	if err := os.Lchown(p, 0, gid); err != nil {
		return fmt.Errorf("code: %w", err)
	}
	if err := os.Chmod(p, perm); err != nil {
		return fmt.Errorf("code: %w", err)
	}
	return nil
}

// fixPerms gives the tree under dir, dir included, the permissions of code
// (above) whatever the host's umask. Symlinks are left alone: their own
// permissions mean nothing, and chmod would follow them.
func fixPerms(dir string, gid int) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return nil
		case d.IsDir():
			return own(p, gid, codeDirPerm)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return own(p, gid, codePerm(info.Mode()))
	})
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
// a copy (the links share the files' ownership and permissions). Across
// file systems it copies, giving the copies those of code (fixPerms).
func linkTree(src, dst string, gid int) error {
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
			if err := os.Mkdir(target, codeDirPerm); err != nil {
				return err
			}
			return own(target, gid, codeDirPerm)
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
		if err := writeFile(target, data, codePerm(info.Mode())); err != nil {
			return err
		}
		return own(target, gid, codePerm(info.Mode()))
	})
}
