# dev/lib.sh: shared by the dev/ scripts (sourced, not run). The script
# sets `root` (the repository root, absolute) and `prog` (its own name, for
# messages) first. The scripts that run a program do not cd to the root, so
# that the program runs in the caller's directory and relative paths given
# to it (INPUT, OUTPUT, --tls-cert, --tls-root, ...) mean what they meant
# there; the go commands run with -C "$root".

# ensure_go puts Go on PATH (from /usr/local/go if it is not there), or
# exits naming what to install. Debian's golang-go is older than the Go this
# module needs (see go.mod); Go comes from the official tarball.
ensure_go() {
	local want
	want="$(sed -n 's/^go //p' "$root/go.mod")"
	# A Go on PATH older than go.mod's (Debian's golang-go) gives way to
	# /usr/local/go's; with neither new enough, say what to install.
	if { ! command -v go >/dev/null 2>&1 || ! go_at_least "$(go env GOVERSION 2>/dev/null)" "$want"; } &&
		[ -x /usr/local/go/bin/go ]; then
		export PATH="/usr/local/go/bin:$PATH"
	fi
	if ! command -v go >/dev/null 2>&1; then
		printf '%s: go not found: install Go %s or newer into /usr/local/go (https://go.dev/doc/install)\n' "$prog" "$want" >&2
		exit 1
	fi
	local have
	have="$(go env GOVERSION 2>/dev/null || true)"
	if ! go_at_least "$have" "$want"; then
		printf '%s: %s is %s, older than the Go %s this module needs: install Go %s or newer into /usr/local/go (https://go.dev/doc/install)\n' \
			"$prog" "$(command -v go)" "${have:-of unknown version}" "$want" "$want" >&2
		exit 1
	fi
}

# go_at_least HAVE WANT: the Go version HAVE (go env GOVERSION, e.g.
# go1.26.8) is WANT (go.mod's, e.g. 1.26.0) or newer. A development
# toolchain ("devel ...") counts as new enough.
go_at_least() {
	case "$1" in
	devel*) return 0 ;;
	go[0-9]*) ;;
	*) return 1 ;;
	esac
	local have="${1#go}"
	have="${have%%[-+ ]*}"
	[ "$(printf '%s\n%s\n' "$2" "$have" | sort -V | head -n1)" = "$2" ]
}

# build_cmd NAME builds ./cmd/NAME and sets `bin` to the binary, so that the
# script can exec it: `exec go run` would leave the program running when the
# script is sent SIGTERM (the go tool does not pass it on). The binaries live
# in a cache directory of their own per checkout; each build links to a new
# name that is then renamed, so that two scripts starting at once do not
# write the same file (and a running binary is never overwritten).
build_cmd() {
	local dir
	local cache="${XDG_CACHE_HOME:-${HOME:+$HOME/.cache}}"
	[ -n "$cache" ] || { printf '%s: neither XDG_CACHE_HOME nor HOME is set: set one (the go command needs HOME too)\n' "$prog" >&2; exit 1; }
	# Absolute: go builds with -C "$root", mv runs here.
	dir="$(abs_path "$cache")/moq-go-dev/$(printf '%s' "$root" | cksum | cut -d' ' -f1)"
	mkdir -p "$dir"
	bin="$dir/$1"
	local tmp
	tmp="$(mktemp -d "$dir/build.XXXXXX")"
	go -C "$root" build -o "$tmp/$1" "./cmd/$1" || { rm -rf "$tmp"; exit 1; }
	mv -f "$tmp/$1" "$bin"
	rmdir "$tmp"
}

# abs_path PATH prints PATH made absolute against the current directory (the
# caller's), for a path that a program run with -C "$root" takes.
abs_path() {
	case "$1" in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$(pwd)" "$1" ;;
	esac
}
