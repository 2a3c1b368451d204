/*
 * offload.h: CPU work too long for an event loop pass (validating,
 * digesting and serializing a 28 MB document upload), run on a small
 * pool of threads shared by every loop.
 *
 * A job is handed over with offload_send() and comes back to its own
 * loop through a port.h port: done runs on that loop.  When the loop is
 * gone first (shutdown), done runs on the worker with dropped set: its
 * request is gone, so done must only free the job.  The work function
 * must touch nothing but the job.
 */
#ifndef CMGATE_OFFLOAD_H
#define CMGATE_OFFLOAD_H

#include <stdbool.h>

#include "port.h"

struct event_base;
struct offload;
struct offload_port;

struct offload_job {
	struct port_item	 link;		/* port.h */
	struct offload_job	*next;		/* the pool's queue */
	void			(*work)(struct offload_job *);
	void			(*done)(struct offload_job *, bool dropped);
};

/* Start n worker threads (n >= 1).  NULL with a message in err. */
struct offload	*offload_new(int n, char *err, size_t errlen);
/* Finish queued jobs, stop and join the threads. */
void		 offload_free(struct offload *);

/* One port per loop; free it on its loop's thread. */
struct offload_port *offload_port_new(struct offload *, struct event_base *);
void		 offload_port_free(struct offload_port *);

/* Loop thread: queue a job (sent to the pool at the end of the pass). */
void		 offload_send(struct offload_port *, struct offload_job *);

#endif
