# scripts/bench/configs.sh: the configurations scripts/bench.sh runs
# (sourced by it, after harness.sh): the nginx config templates, the
# fixed-answer upstream and the peer (nginx as a reverse proxy), both
# started here, and start_cmgate, which writes a cmgate config and
# starts it.
nginx_common() { # nginx_common NAME: the top of an nginx config
	local n=$1
	cat <<EOF
worker_processes 1;
worker_rlimit_nofile 65536;
pid $D/$n/nginx.pid;
error_log $D/$n/error.log warn;
$( [ "$(id -u)" = 0 ] && echo "user nobody nogroup;" )
events { worker_connections 30000; }
http {
    client_body_temp_path $D/$n/body;
    proxy_temp_path $D/$n/proxy;
    fastcgi_temp_path $D/$n/fastcgi;
    uwsgi_temp_path $D/$n/uwsgi;
    scgi_temp_path $D/$n/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    # the upload section posts 28 MB documentation bodies (the default
    # cap is 1 MB); no effect on the small-body sections.
    client_max_body_size 64m;
EOF
}

start_nginx() { # start_nginx NAME: config in $D/NAME/nginx.conf
	local n=$1 i
	"$NGINX" -e "$D/$n/error.log" -p "$D/$n/" -c "$D/$n/nginx.conf" \
	    -g 'daemon off;' 2>>"$D/$n/error.log" &
	PIDS+=($!)
	eval "PID_$n=$!"
	for i in $(seq 100); do
		[ -s "$D/$n/nginx.pid" ] && pgrep -P "$!" >/dev/null && return 0
		kill -0 "$!" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench: nginx ($n) did not start:" >&2
	cat "$D/$n/error.log" >&2
	exit 99
}

# The fixed-answer upstream: one nginx worker, HTTP and HTTPS.
UP_HTTP=$(free_port) UP_HTTPS=$(free_port)
mkdir -p "$D/up"
{
	nginx_common up
	cat <<EOF
    access_log off;
    server {
        listen 127.0.0.1:$UP_HTTP;
        listen 127.0.0.1:$UP_HTTPS ssl;
        ssl_certificate $D/cert.pem;
        ssl_certificate_key $D/key.pem;
        ssl_session_cache shared:up:10m;
        location / {
            default_type application/json;
            return 200 '$RESP';
        }
    }
}
EOF
} > "$D/up/nginx.conf"
start_nginx up

# The peer: nginx as a plain reverse proxy, configured fairly: one
# worker, upstream keep-alive above the connection count, x-api-key
# injected, TLS verified against the same certificate and name.  It
# logs each request (its default), as cmgate does.
PEER_HTTP=$(free_port) PEER_HTTPS=$(free_port)
mkdir -p "$D/peer"
{
	nginx_common peer
	cat <<EOF
    access_log $D/peer/access.log;
    upstream up_http { server 127.0.0.1:$UP_HTTP; keepalive 1024;
        keepalive_requests 100000000; }
    upstream up_https { server 127.0.0.1:$UP_HTTPS; keepalive 1024;
        keepalive_requests 100000000; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header x-api-key "$API_KEY";
    server {
        listen 127.0.0.1:$PEER_HTTP;
        location / { proxy_pass http://up_http; }
    }
    server {
        listen 127.0.0.1:$PEER_HTTPS;
        location / {
            proxy_pass https://up_https;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $D/cert.pem;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_ssl_session_reuse on;
        }
    }
}
EOF
} > "$D/peer/nginx.conf"
start_nginx peer

# start_cmgate NAME WORKERS UPSTREAM_URL RATE [EXTRA_UPSTREAM_JSON
# [EXTRA_CALLER_JSON]]: a cmgate with its own folder, audit log and
# config.  RATE "" keeps the default budget.  EXTRA_CALLER_JSON is
# added to the caller's entry (the upload section: allow and clients).
# Sets URL_NAME and PID_NAME.
start_cmgate() {
	local n=$1 w=$2 url=$3 rate=$4 extra=${5:-} cextra=${6:-} ca=null port i
	mkdir -p "$D/$n" "$AD/$n"
	case $url in https:*) ca="\"$D/cert.pem\"" ;; esac
	cat > "$D/$n/cmgate.json" <<EOF
{
  "listen": "127.0.0.1:0",
  "workers": $w,
  "upstream": {
    "base_url": "$url",
    "api_key_file": "$D/api-key",
    "ca_file": $ca
    $( [ -n "$rate" ] && echo ", \"rate_limit_per_sec\": $rate" )
    $extra
  },
  "audit": { "path": "$AD/$n/audit.log", "key_file": "$D/audit.key" },
  "callers": [ { "name": "bench", "token_sha256": "$TOKEN_SHA"$cextra } ],
  "idempotency": { "path": "idem.db" }
}
EOF
	chmod 644 "$D/$n/cmgate.json"	# cmgate refuses a group-writable config
	"$CMGATE" -c "$D/$n/cmgate.json" 2>"$D/$n/gw.log" &
	PIDS+=($!)
	eval "PID_$n=$!"
	if ! wait_for "$D/$n/gw.log" "listening on" 400; then
		echo "bench: cmgate ($n) did not start:" >&2
		cat "$D/$n/gw.log" >&2
		exit 99
	fi
	port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' \
	    "$D/$n/gw.log" | tail -n1)
	eval "URL_$n=http://127.0.0.1:$port"
}
