# netns-up.sh: sourced by shaped-cat.sh and slow-provider-cat.sh.
# up NS BIN REPO: poll until the daemon of REPO, run in network namespace
# NS, answers `BIN id`; after 60 s say so and return 1.
up() {
	for _ in $(seq 600); do
		[ -f "$3/api" ] && IPFS_PATH=$3 ip netns exec "$1" "$2" id >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "daemon in $1 did not come up; see the logs beside $3" >&2
	return 1
}
