#!/usr/bin/env bash
# Keep a server running: start it again whenever it exits.
#
#   supervise.sh NAME LOG -- COMMAND [ARGS...]
#
# Why: a crashed LLM server would otherwise leave every student with "not reachable"
# until someone noticed and restarted the appliance. The wait before each restart
# doubles after a quick failure (1, 2, 4 ... 60 s), so a server that cannot start does
# not spin; a run that lasted a minute or more resets it. Every exit and restart is a
# line in LOG. A HUP, INT or TERM (tmux closing the session, Ctrl-C, `stop`) stops the
# server and this loop together.
set -u
name="$1"; log="$2"; shift 2
[ "${1:-}" = "--" ] && shift
child=""
stopping=0
stop() {
  stopping=1
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
  echo "=== $(date -Is) $name stopped" >> "$log"
  exit 0
}
trap stop HUP INT TERM
delay=1
while [ "$stopping" = "0" ]; do
  started=$(date +%s)
  "$@" >> "$log" 2>&1 &
  child=$!
  wait "$child"
  code=$?
  child=""
  ran=$(( $(date +%s) - started ))
  [ "$ran" -ge 60 ] && delay=1
  echo "=== $(date -Is) $name exited (code $code after ${ran}s); restarting in ${delay}s" >> "$log"
  sleep "$delay" &
  wait $!
  delay=$(( delay * 2 > 60 ? 60 : delay * 2 ))
done
