// Command image-rootfs writes the gateway image's root filesystem as a tar
// archive (see package imagefs). The Dockerfile's builder stage runs it:
//
//	image-rootfs -binary bin/claude-gateway -caddyfile Caddyfile -snippets snippets.caddyfile \
//		-ca-bundle /etc/ssl/certs/ca-certificates.crt -o rootfs.tar
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/claude-gateway/claude-gateway/deploy/imagefs"
)

func main() {
	var l imagefs.Layout
	out := flag.String("o", "rootfs.tar", "output archive")
	flag.StringVar(&l.Binary, "binary", "bin/claude-gateway", "statically linked gateway binary")
	flag.StringVar(&l.Caddyfile, "caddyfile", "Caddyfile", "config installed at "+imagefs.CaddyfilePath)
	flag.StringVar(&l.Snippets, "snippets", "snippets.caddyfile", "snippets the config imports, installed at "+imagefs.SnippetsPath)
	flag.StringVar(&l.CABundle, "ca-bundle", imagefs.CABundlePath, "PEM bundle of trusted roots")
	flag.Parse()
	if err := write(l, *out); err != nil {
		fmt.Fprintln(os.Stderr, "image-rootfs:", err)
		os.Exit(1)
	}
}

func write(l imagefs.Layout, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := l.WriteTar(w); err != nil {
		f.Close()
		os.Remove(out)
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
