/*
 * offload.h: CPU work too long for an event loop pass (validating,
 * digesting and serializing a 28 MB document upload), run on a small
 * pool of threads shared by every loop.
 *
 * A job is handed over with offload_send() and comes back to its own
 * loop through a port.h port: done runs on that loop.  done gets
 * dropped set when there is no result to use: the loop was gone first
 * (shutdown; done then runs on the worker, or in offload_free, and its
 * request is gone, so it must only free the job), or offload_free took
 * the job from the queue unrun (done runs wherever the job comes back).
 * Either way done runs once per job, and is what frees it.  The work
 * function must touch nothing but the job (and what the job holds a
 * reference to).
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
	bool			 unrun;		/* offload.c: dropped from the
						   queue at offload_free */
};

/* Start n worker threads (n >= 1).  NULL with a message in err. */
struct offload	*offload_new(int n, char *err, size_t errlen);
/*
 * Drop the jobs still queued (back through their ports, dropped, so
 * each is freed once), let the running ones finish, join the threads.
 * Call it after the loops stopped sending (their ports freed, as at
 * exit): a job queued later would touch a freed pool.
 */
void		 offload_free(struct offload *);

/* One port per loop; free it on its loop's thread. */
struct offload_port *offload_port_new(struct offload *, struct event_base *);
void		 offload_port_free(struct offload_port *);

/* Loop thread: queue a job (sent to the pool at the end of the pass). */
void		 offload_send(struct offload_port *, struct offload_job *);

#endif
