# Helpers the benches share (sourced by scripts/bench-fleet and scripts/bench-resumption).
# CPU time of every thread of the process, in nanoseconds (the scheduler's own count, where
# /proc/PID/stat's utime+stime come in 10 ms units: a few per cent of a row).
# A thread that exited between two readings takes its time with it: `none_ended` lets a row say so (a
# thread that started is counted whole).
cpu() { { cat /proc/"$1"/task/*/schedstat 2>/dev/null || true; } | awk '{ s += $1 } END { printf "%.0f", s }'; }
# Times the process's threads went to sleep (voluntary context switches, every thread): an event
# loop's waits in epoll_wait (one per wake-up), and any lock or condition waits besides.
sleeps() { { cat /proc/"$1"/task/*/status 2>/dev/null || true; } | awk '/^voluntary_ctxt_switches/ { s += $2 } END { printf "%.0f", s }'; }
threads() { ls /proc/"$1"/task 2>/dev/null | sort -n | tr '\n' ' '; }
none_ended() { local t; for t in $1; do case " $2 " in *" $t "*) ;; *) return 1 ;; esac; done; }  # false if a thread of $1 is not in $2
# Waits (up to 10 s) until something accepts on 127.0.0.1:$1.
wait_port() { local _; for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
