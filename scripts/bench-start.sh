#!/bin/sh
# bench-start.sh [N]: start latency of `run` of /bin/true in the busybox bundle, ocibox vs
# runc vs crun (when it runs on this host) vs a bare `unshare` of the same namespaces,
# interleaved in one run (one round = every contender once, order rotated), medians and
# ratios to runc. Also: ocibox without the sealed-binary protection (CVE-2019-5736), to
# show what it costs, and with containerd's default seccomp profile.
# As root. Prints a Markdown table.
set -eu
cd "$(dirname "$0")/.."
N=${1:-40}
bin=${OCIBOX:-target/x86_64-unknown-linux-gnu/release/ocibox}
[ -x "$bin" ] || cargo build --release >/dev/null
work=$(mktemp -d /tmp/ocibox-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
OCIBOX="$bin" scripts/make-busybox-bundle.sh "$work/bundle" /bin/true
seccomp_profile=tests/fixtures/seccomp/containerd-default.json
if [ -f "$seccomp_profile" ]; then
    cp -r "$work/bundle" "$work/bundle-seccomp"
    jq --slurpfile p "$seccomp_profile" '.linux.seccomp = $p[0]' "$work/bundle/config.json" >"$work/bundle-seccomp/config.json"
fi

# Contenders: a name, then the command as words (no shell in between).
list="$work/contenders"
: >"$list"
add() { printf '%s\t%s\n' "$1" "$2" >>"$list"; }
add "ocibox" "$bin runc --root $work/ocibox run -b $work/bundle c"
add "ocibox (sealed-copy protection)" "env OCIBOX_SEALED_INIT=1 $bin runc --root $work/ocibox4 run -b $work/bundle c"
add "ocibox (no exe protection)" "env _OCIBOX_BENCH_UNSAFE_NO_EXE_PROTECTION=1 $bin runc --root $work/ocibox2 run -b $work/bundle c"
if [ -f "$seccomp_profile" ]; then
    add "ocibox + seccomp" "$bin runc --root $work/ocibox3 run -b $work/bundle-seccomp c"
    add "runc + seccomp" "runc --root $work/runc2 run -b $work/bundle-seccomp c"
fi
add "runc" "runc --root $work/runc run -b $work/bundle c"
if crun --root "$work/crun-probe" run -b "$work/bundle" probe >/dev/null 2>&1; then
    add "crun" "crun --root $work/crun run -b $work/bundle c"
else
    echo "crun: does not run on this host (cgroup layout), left out" >&2
fi
add "unshare (floor)" "unshare --pid --fork --net --ipc --uts --mount /bin/true"

# The timing loop: perl's fork+exec with a monotonic clock, rounds interleaved (the
# order rotates each round), one warm-up round, medians and ratios to runc.
perl -MTime::HiRes=clock_gettime,CLOCK_MONOTONIC -e '
    my ($n, $file) = @ARGV;
    open my $fh, "<", $file or die; my @c;
    while (<$fh>) { chomp; my ($name, $cmd) = split /\t/; push @c, [$name, [split / /, $cmd]]; }
    my @t = map { [] } @c;
    sub run1 { my $pid = fork // die; if (!$pid) { open STDOUT, ">/dev/null"; open STDERR, ">/dev/null"; exec @{$_[0]} or exit 127 } waitpid $pid, 0; return $? }
    for my $i (0..$#c) { run1($c[$i][1]) == 0 or die "failed: $c[$i][0]\n" }
    for my $r (0..$n-1) {
        for my $k (0..$#c) {
            my $i = ($r + $k) % @c;
            my $t0 = clock_gettime(CLOCK_MONOTONIC); run1($c[$i][1]); my $t1 = clock_gettime(CLOCK_MONOTONIC);
            push @{$t[$i]}, ($t1 - $t0) * 1000;
        }
    }
    sub median { my @s = sort { $a <=> $b } @_; my $m = int(@s/2); @s % 2 ? $s[$m] : ($s[$m-1] + $s[$m]) / 2 }
    my %med = map { ($c[$_][0] => median(@{$t[$_]})) } 0..$#c;
    my $runc = $med{"runc"};
    printf "start latency, `run` of /bin/true, %d interleaved rounds\n\n", $n;
    print "| contender | median ms | ratio to runc |\n|---|---:|---:|\n";
    printf "| %s | %.2f | %.2f |\n", $_->[0], $med{$_->[0]}, $med{$_->[0]} / $runc for @c;
' "$N" "$list"
