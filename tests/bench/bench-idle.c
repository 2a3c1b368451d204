/*
 * bench-idle: open many keep-alive connections to a server, make one
 * request on each, then hold them all idle, for scripts/bench.sh
 * (issue 8: "10,000 idle keep-alive caller connections held in under
 * 64 MiB RSS").
 *
 * usage: bench-idle HOST PORT COUNT [PATH]
 *
 * Each connection sends "GET PATH HTTP/1.1" (default /healthz) and
 * waits for the start of a 200 answer; at most 256 connections are
 * being set up at a time so the listen backlog never overflows.  Then
 * one line goes to stdout:
 *   holding N connections (A answered 200, F failed)
 * and the program sleeps, connections open, until a signal ends it
 * (the exit status is then the signal's).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define IDLE_WINDOW	256

enum { C_CONNECTING, C_WAITING, C_DONE, C_FAILED };

struct idle_conn {
	int	fd;
	int	state;
};

static int
idle_open(const struct sockaddr_in *sa, int ep, struct idle_conn *c)
{
	struct epoll_event ev;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == -1 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->state = C_CONNECTING;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLOUT | EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		close(fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct epoll_event evs[64];
	struct idle_conn *conns;
	struct rlimit rl;
	char req[512], buf[4096];
	size_t reqlen;
	long count, opened = 0, busy = 0, answered = 0, failed = 0, i;
	int ep, n;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: bench-idle HOST PORT COUNT [PATH]\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "bench-idle: %s: not an IPv4 address\n",
		    argv[1]);
		return 2;
	}
	count = atol(argv[3]);
	if (count < 1 || count > 1000000) {
		fprintf(stderr, "bench-idle: COUNT must be 1..1000000\n");
		return 2;
	}
	reqlen = (size_t)snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n"
	    "Host: %s\r\n\r\n", argc == 5 ? argv[4] : "/healthz", argv[1]);
	if (reqlen >= sizeof(req)) {
		fprintf(stderr, "bench-idle: PATH too long\n");
		return 2;
	}
	/* One descriptor per connection, and a few more. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)count + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)count + 64 ?
		    rl.rlim_max : (rlim_t)count + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((conns = calloc((size_t)count, sizeof(*conns))) == NULL ||
	    (ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("bench-idle");
		return 1;
	}
	while (answered + failed < count) {
		while (opened < count && busy < IDLE_WINDOW) {
			if (idle_open(&sa, ep, &conns[opened]) == -1) {
				conns[opened].state = C_FAILED;
				conns[opened].fd = -1;
				failed++;
			} else
				busy++;
			opened++;
		}
		if ((n = epoll_wait(ep, evs, 64, 10000)) <= 0) {
			fprintf(stderr, "bench-idle: stalled with %ld "
			    "connections being set up\n", busy);
			break;
		}
		for (i = 0; i < n; i++) {
			struct idle_conn *c = evs[i].data.ptr;
			ssize_t r;
			int err = 0;
			socklen_t elen = sizeof(err);

			if (c->state == C_CONNECTING) {
				if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR,
				    &err, &elen) == -1 || err != 0 ||
				    write(c->fd, req, reqlen) !=
				    (ssize_t)reqlen)
					goto failed;
				c->state = C_WAITING;
				evs[i].events = EPOLLIN;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &evs[i]);
				continue;
			}
			if (c->state != C_WAITING)
				continue;
			r = read(c->fd, buf, sizeof(buf) - 1);
			if (r == -1 && errno == EAGAIN)
				continue;
			if (r <= 0)
				goto failed;
			buf[r] = '\0';
			if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
				goto failed;
			/* Answered: stop watching; the connection stays
			 * open and idle. */
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			c->state = C_DONE;
			answered++;
			busy--;
			continue;
failed:
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->fd = -1;
			c->state = C_FAILED;
			failed++;
			busy--;
		}
	}
	printf("holding %ld connections (%ld answered 200, %ld failed)\n",
	    answered, answered, failed + (count - answered - failed));
	fflush(stdout);
	if (failed > 0 || answered < count)
		return 1;
	/* Hold until a signal ends the process; the kernel closes the
	 * connections. */
	for (;;)
		pause();
}
