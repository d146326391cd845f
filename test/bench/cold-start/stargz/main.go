// Command thaw-stargz-grpc serves stargz-snapshotter's snapshotter on a containerd proxy-plugin
// socket, for the cold-start benchmark's `stargz-optimized` row.
//
// Debian 12 ships the library (golang-github-containerd-stargz-snapshotter-dev 0.12.0) and
// ctr-remote (stargz-snapshotter) but not the daemon, containerd-stargz-grpc. This is a small main
// of thaw's own over the library's public packages: fs (lazy eStargz layers on FUSE), snapshot
// (the overlay snapshotter that mounts them) and containerd's snapshotservice (the gRPC adapter).
// It leaves out what the benchmark does not need: the library's service/... packages (they need
// k8s.io/cri-api, which Debian lacks), credential helpers, metrics and IPFS.
//
// containerd finds it through its config:
//
//	[proxy_plugins.stargz]
//	  type = "snapshot"
//	  address = "<the -address socket>"
//
// Built in GOPATH mode from Debian's packages by scripts/install-bench.sh; never downloaded.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/BurntSushi/toml"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/reference"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/snapshots/overlay/overlayutils"
	stargzfs "github.com/containerd/stargz-snapshotter/fs"
	"github.com/containerd/stargz-snapshotter/fs/config"
	"github.com/containerd/stargz-snapshotter/fs/layer"
	"github.com/containerd/stargz-snapshotter/fs/source"
	"github.com/containerd/stargz-snapshotter/snapshot"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
)

func main() {
	root := flag.String("root", "", "state directory (snapshots, FUSE mounts, caches)")
	address := flag.String("address", "", "unix socket to serve the snapshots API on")
	configPath := flag.String("config", "", "optional TOML file decoded into the library's fs/config.Config")
	plainHTTP := flag.Bool("plain-http", false, "fetch from every registry over plain HTTP (default: only localhost)")
	logLevel := flag.String("log-level", "info", "logrus level")
	flag.Parse()
	if *root == "" || *address == "" {
		fmt.Fprintln(os.Stderr, "usage: thaw-stargz-grpc -root DIR -address SOCKET [-config FILE] [-plain-http]")
		os.Exit(2)
	}
	if err := run(*root, *address, *configPath, *plainHTTP, *logLevel); err != nil {
		fmt.Fprintf(os.Stderr, "thaw-stargz-grpc: %v\n", err)
		os.Exit(1)
	}
}

func run(root, address, configPath string, plainHTTP bool, logLevel string) error {
	level, err := logrus.ParseLevel(logLevel)
	if err != nil {
		return err
	}
	logrus.SetLevel(level)
	ctx := log.WithLogger(context.Background(), logrus.NewEntry(logrus.StandardLogger()))

	var cfg config.Config
	if configPath != "" {
		if _, err := toml.DecodeFile(configPath, &cfg); err != nil {
			return fmt.Errorf("config %s: %w", configPath, err)
		}
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	// Overlay reads opaque directories from trusted.* xattrs unless it is mounted with userxattr
	// (rootless, or kernels that need it); the FUSE layers must answer the one overlay will ask.
	opaque := layer.OverlayOpaqueTrusted
	if user, err := overlayutils.NeedsUserXAttr(root); err != nil {
		return fmt.Errorf("probing overlayfs: %w", err)
	} else if user {
		opaque = layer.OverlayOpaqueUser
	}
	fsys, err := stargzfs.NewFilesystem(filepath.Join(root, "stargz"), cfg,
		stargzfs.WithGetSources(source.FromDefaultLabels(registryHosts(plainHTTP))),
		stargzfs.WithOverlayOpaqueType(opaque),
	)
	if err != nil {
		return fmt.Errorf("filesystem: %w", err)
	}
	sn, err := snapshot.NewSnapshotter(ctx, filepath.Join(root, "snapshotter"), fsys, snapshot.AsynchronousRemove)
	if err != nil {
		return fmt.Errorf("snapshotter: %w", err)
	}
	defer func() {
		// Close unmounts every FUSE layer the snapshotter still holds.
		if err := sn.Close(); err != nil {
			log.G(ctx).WithError(err).Warn("closing the snapshotter")
		}
	}()

	rpc := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(rpc, snapshotservice.FromSnapshotter(sn))
	if err := os.MkdirAll(filepath.Dir(address), 0o700); err != nil {
		return err
	}
	if err := os.Remove(address); err != nil && !os.IsNotExist(err) {
		return err
	}
	listener, err := net.Listen("unix", address)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- rpc.Serve(listener) }()
	// The benchmark waits for this line before it starts containerd.
	fmt.Printf("thaw-stargz-grpc: serving on %s\n", address)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-signals:
		log.G(ctx).Infof("%v: stopping", s)
		rpc.Stop()
		return nil
	case err := <-served:
		return err
	}
}

// registryHosts answers one host per reference: the reference's own registry, over plain HTTP when
// asked (the benchmark's registry sits behind an emulated link at a non-loopback address) or when
// it is localhost. The library wraps Client.Transport for its range requests, so the client must
// have one: retryablehttp's StandardClient does, and it makes the config's [blob] retry settings
// effective (fs/remote/resolver.go sets them on its RoundTripper). No credentials: the
// benchmark's registry has no auth.
func registryHosts(plainHTTP bool) source.RegistryHosts {
	return func(ref reference.Spec) ([]docker.RegistryHost, error) {
		host := ref.Hostname()
		scheme := "https"
		if local, _ := docker.MatchLocalhost(host); plainHTTP || local {
			scheme = "http"
		}
		client := retryablehttp.NewClient()
		client.Logger = nil
		return []docker.RegistryHost{{
			Client:       client.StandardClient(),
			Host:         host,
			Scheme:       scheme,
			Path:         "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
		}}, nil
	}
}
