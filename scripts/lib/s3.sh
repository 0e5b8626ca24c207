# Starts a throwaway S3 server (s3s-fs, a real S3 HTTP API over a directory) on 127.0.0.1 for
# the tests; sourced by scripts/test. scripts/ensure-tools test installs it.
#   start_test_s3   creates the bucket through the S3 API and sets TEST_S3_ENDPOINT,
#                   TEST_S3_BUCKET, TEST_S3_ACCESS_KEY and TEST_S3_SECRET_KEY
#   stop_test_s3    stops it and removes its data

S3S_FS_BIN=${S3S_FS_BIN:-target/tools/s3s-fs/bin/s3s-fs}

start_test_s3() {
  local port access secret
  [ -x "$S3S_FS_BIN" ] || { echo "s3s-fs is not installed (scripts/ensure-tools test)" >&2; return 1; }
  S3_TEST_DIR=$(mktemp -d /tmp/image-console-s3.XXXXXX)
  mkdir -p "$S3_TEST_DIR/data"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  access=test-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
  secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  "$S3S_FS_BIN" --host 127.0.0.1 --port "$port" --access-key "$access" --secret-key "$secret" \
    "$S3_TEST_DIR/data" >"$S3_TEST_DIR/server.log" 2>&1 &
  S3_TEST_PID=$!
  export TEST_S3_ENDPOINT="http://127.0.0.1:$port" TEST_S3_BUCKET=console-tests
  export TEST_S3_ACCESS_KEY=$access TEST_S3_SECRET_KEY=$secret
  local tries=0
  # CreateBucket, signed as any S3 client signs it; it also waits for the server to listen.
  until curl -sf -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access:$secret" \
      -H "x-amz-content-sha256: $(printf '' | sha256sum | cut -d' ' -f1)" \
      "$TEST_S3_ENDPOINT/$TEST_S3_BUCKET" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ $tries -gt 100 ] || ! kill -0 "$S3_TEST_PID" 2>/dev/null; then
      tail -n 20 "$S3_TEST_DIR/server.log" >&2
      echo "s3s-fs did not start or refused CreateBucket" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "s3s-fs for tests at $TEST_S3_ENDPOINT (bucket $TEST_S3_BUCKET)" >&2
}

stop_test_s3() {
  [ -n "${S3_TEST_DIR:-}" ] || return 0
  kill "$S3_TEST_PID" 2>/dev/null || true
  wait "$S3_TEST_PID" 2>/dev/null || true
  rm -rf "$S3_TEST_DIR"
  S3_TEST_DIR=
}
