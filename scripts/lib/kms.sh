# Starts a throwaway KMS API server (moto's server, from PyPI) on 127.0.0.1 for the tests of
# KEY_PROVIDER=aws-kms; sourced by scripts/test. scripts/ensure-tools test installs it.
#   start_test_kms   sets TEST_KMS_ENDPOINT
#   stop_test_kms    stops it

MOTO_SERVER_BIN=${MOTO_SERVER_BIN:-target/tools/moto/bin/moto_server}

start_test_kms() {
  local port tries=0
  [ -x "$MOTO_SERVER_BIN" ] || { echo "moto is not installed (scripts/ensure-tools test)" >&2; return 1; }
  KMS_TEST_LOG=$(mktemp /tmp/image-console-kms.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$MOTO_SERVER_BIN" -H 127.0.0.1 -p "$port" >"$KMS_TEST_LOG" 2>&1 &
  KMS_TEST_PID=$!
  export TEST_KMS_ENDPOINT="http://127.0.0.1:$port"
  # ListKeys, as any KMS client sends it; it also waits for the server to listen.
  until curl -sf -X POST -H 'Content-Type: application/x-amz-json-1.1' \
      -H 'X-Amz-Target: TrentService.ListKeys' -d '{}' "$TEST_KMS_ENDPOINT/" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ $tries -gt 150 ] || ! kill -0 "$KMS_TEST_PID" 2>/dev/null; then
      tail -n 20 "$KMS_TEST_LOG" >&2
      echo "moto_server did not start" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "moto KMS for tests at $TEST_KMS_ENDPOINT" >&2
}

stop_test_kms() {
  [ -n "${KMS_TEST_PID:-}" ] || return 0
  kill "$KMS_TEST_PID" 2>/dev/null || true
  wait "$KMS_TEST_PID" 2>/dev/null || true
  rm -f "$KMS_TEST_LOG"
  KMS_TEST_PID=
}
