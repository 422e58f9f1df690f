# Sourced: a throw-away CA and a localhost certificate it signs, made with
# openssl, for the scripts that run the broker over TLS (webpki refuses a
# CA certificate as a leaf, so the leaf is signed by a CA of its own).
#
#   source scripts/lib/test-cert.sh
#   make_test_cert DIR     # -> DIR/ca.pem (trust it), DIR/cert.pem, DIR/key.pem

make_test_cert() {
  local dir=$1
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -days 1 -subj /CN=tickwire-test-ca -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req "${ec[@]}" -subj /CN=localhost -keyout "$dir/key.pem" -out "$dir/leaf.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$dir/leaf.ext"
  openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 1 -extfile "$dir/leaf.ext" -out "$dir/cert.pem" 2>/dev/null
}
