/*
 * idem_txn.h: what work run inside the store's transactions sees
 * (idem_call, idem_db_txn): the LMDB transaction and the databases of
 * the modules that keep their data in the store's environment.  Only
 * idem.c and those modules (owners.c) include it.
 */
#ifndef CMGATE_IDEM_TXN_H
#define CMGATE_IDEM_TXN_H

#include <lmdb.h>

struct idem_dbis {
	MDB_dbi	owners;	/* client id -> caller name (owners.c) */
	MDB_dbi	owned;	/* caller NUL client id -> "" (owners.c) */
	MDB_dbi	admin;	/* be64 time, be32 n -> an operator's change,
			   waiting to be audited (owners.c) */
};

struct idem_txn {
	MDB_txn			*txn;
	const struct idem_dbis	*dbis;
};

#endif
