package main

// The command reference: what each command does, beyond its flags. Each
// text ends a command's -h; "runnel help" prints them all.

func init() {
	mainHelp = `
Client commands reach the seed brokers in --bootstrap-server (before or
after the command name), else $RUNNEL_BOOTSTRAP_SERVER, else bootstrap.servers
in the --command-config file, else 127.0.0.1:9092. Flags may come before or
after positional arguments. The exit status is 0 on success, 1 when the
command failed (the reason is on stderr) and 2 when it was called wrongly
(the usage is on stderr).

Run 'runnel COMMAND -h' for a command's flags and what it does, or
'runnel help' for every command.
`
	commandHelp = map[string]string{
		"broker": `Runs a broker until SIGINT or SIGTERM, then shuts it down cleanly and exits
0 (a second signal kills it); a SIGKILL loses nothing that was acknowledged.
At start it logs its version, node id, listener, data dir and metrics
address (and the progress of log recovery when that takes over a second).
Once clients can connect it prints "runnel broker listening on HOST:PORT" on
stdout, and with --metrics-listen "runnel broker metrics on
http://HOST:PORT/metrics" (Prometheus), and with --registry-listen
"runnel broker schema registry on http://HOST:PORT" (the Confluent Schema
Registry REST API, schemas kept in the topic _schemas). Its log goes to stderr. The data
dir is locked (DIR/.lock holds the pid): a second broker on it exits 1 at
once, naming the pid of the first.

In a cluster (--controller-quorum), SIGTERM first runs a controlled
shutdown: the controller moves the broker's leaderships to other in-sync
replicas and takes it out of every ISR, and the broker stops once its
partitions have handed over (at most --controlled-shutdown-timeout), so a
rolling restart fails no acks=all request; a partition whose ISR is the
broker alone goes offline until it is back. The controller also moves
leaderships back to each partition's preferred (first) replica once it is
in the ISR again, checking every --leader-imbalance-check-interval
(--auto-leader-rebalance). The broker serves ElectLeaders,
AlterPartitionReassignments and ListPartitionReassignments, so Kafka's
kafka-leader-election and kafka-reassign-partitions work against it.

Appends are written with O_DIRECT, past the page cache, and what the
partitions this broker leads wrote is kept in memory of the broker's own
(--direct-writes-cache, an eighth of the machine's memory by default, or
of the container's memory limit where lower, oldest first out), where consumers reading along, or coming soon after,
read it; a reader further behind reads the files. The broker takes that
memory while it is idle, at start and in pauses of the load, so that
appends do not pay for new memory (--direct-writes-cache-prefault; =false
takes it only as appends need it). A leader's append only
copies into that memory, and the fsync before the acknowledgement first
writes all a partition gathered since the last one in one write (with
flush.messages above 1, each append is written as it comes).
--direct-writes=false
writes through the page cache, as Kafka does. Pages of the page cache that
every connection fetching a partition has fetched, once on disk, are
dropped so later appends reuse them (--cache-drop-behind; =false keeps
every page until the kernel evicts it, as Kafka does).
`,
		"acls add": `Adds an ACL for every principal (with each of its hosts, * by default),
operation and resource named, as kafka-acls --add. The broker must run
with --authorizer (SECURITY_DISABLED otherwise) and the caller needs
Alter on the cluster (a super user, or an ACL granting it).
`,
		"acls list": `Prints the ACLs of the resources named (every ACL without one), grouped by
resource pattern, as kafka-acls --list prints them. Pattern type "match"
lists every ACL that applies to a name: its literal ACLs, the wildcard *
and the prefixes of it. Needs Describe on the cluster.
`,
		"acls remove": `Removes the ACLs of the resources named that match the principals, hosts
and operations given (any of each when none is given), and prints them,
as kafka-acls --remove --force. Needs Alter on the cluster.
`,
		"topics create": `Takes the broker's defaults for what it is not told; --config repeats, one
Kafka topic config each (retention.ms=60000).
`,
		"topics describe": `Prints the topic id, the configs set on the topic (every config with its
source under --all-configs: topic, broker or cluster for a dynamic broker
config or the cluster-wide dynamic default, static for the broker's own
configuration, default for Kafka's) and, per partition, the leader, leader
epoch, replicas, ISR, start and end offsets. An offline partition's leader
prints as "none" (and its offsets as "-"); partitions being reassigned are
listed after the table with the replicas being added and removed.
`,
		"topics alter": `Changes a live topic's configs in one step (Kafka's
IncrementalAlterConfigs): --config sets, --delete-config returns a config to
the broker's default, --append-config / --subtract-config add or remove
items of a list config (cleanup.policy=compact). The broker checks every
change as Apache Kafka does and refuses them all with the reason if one is
bad; --validate-only only checks. Changes apply at once, without a restart.
`,
		"topics delete-records": `Moves the start offset of the partition (or of every partition) forward to
--offset, -1 meaning the high watermark; the records below it are gone for
good, and consumers positioned there reset by their auto.offset.reset.
`,
		"produce": `Each line of stdin, without its newline, becomes one record; an empty line
is an empty record. With --key-separator the text before the first SEP is
the key (a line without SEP is an error). Records go to --partition, or else
are partitioned by key with murmur2 as Kafka's Java client does. The count
written is reported on stderr: "produced N records to TOPIC". A record larger
than --max-message-bytes is refused by the client; one larger than the
topic's max.message.bytes by the broker; the error says which.
`,
		"consume": `Prints one record a line: the value, preceded by CreateTime:MILLIS with
--print-timestamp, PARTITION:OFFSET with --print-offset (PARTITION alone
with --print-partition), the headers with --print-headers and the key with
--print-key, tab-separated; null keys and values print as "null". Or
--format prints each record by a template, as kcat -f does:
    runnel consume orders-per-minute --key-format 'windowed(string)' \
        --value-format int64 --format '%k %v (partition %p offset %o)'
Keys and values print as --key-format / --value-format say: string, bytes
(hex), int32, int64, double (the big-endian encodings of Runnel's and
Kafka's serdes), json, or windowed(FORMAT) for the keys of a windowed
aggregate, printed [KEY@START/END] in epoch milliseconds.

Without --group it reads every partition, or only --partition, from the end
unless --from-beginning or --offset N (in each partition read; an offset
past a partition's end waits at the end) says otherwise. With --group it
reads as a member of that consumer group, from the group's committed
offsets (or, where it has none, the start with --from-beginning, else the
end), and commits what it printed. Transactional records print once
committed; aborted ones never (--isolation-level read_uncommitted prints
everything). It stops after --max-messages records, when no record arrived
for --timeout (an error if --max-messages was not reached), or on SIGINT,
and reports "consumed N records from TOPIC" on stderr.
`,
		"groups list": `Prints every group's id, state, protocol type and member count; --state
keeps only groups in the given states (any case).
`,
		"groups describe": `Prints the group's state, protocol type, assignor and coordinator, its
members (member id, instance id, client id, host, assigned partitions) and
then, as kafka-consumer-groups --describe does, one line per partition with
the committed offset, the end offset (high watermark) and the lag; "-" means
nothing is committed there.
`,
		"groups reset-offsets": `Prints the new offsets of the partitions named by --topic (repeatable; TOPIC
alone means every partition) and, with --execute, commits them, as
kafka-consumer-groups --reset-offsets does; without --execute (or with
--dry-run) nothing changes. It works only while the group has no members,
since a running member would overwrite them; a group that does not exist yet
is created. --to-offset N outside a partition's [start, end] is clamped to
it, with a note on stderr; --to-datetime TS and --by-duration D take the
first record at or after the time, or the end offset (with a note) when
there is none.
`,
		"users add": `Sets a SCRAM user's password (AlterUserScramCredentials, as kafka-configs
--alter --add-config 'SCRAM-SHA-512=[password=...]' --entity-type users
does): the client salts it and sends the salted form; the cluster keeps
only keys derived from it, in its replicated metadata, so every broker
authenticates the user at once and after restarts. A user that exists gets
the new password; the old one stops working for new connections.
`,
		"users list": `Prints each SCRAM user of the cluster's metadata with its mechanisms and
iteration counts (never a password or salt).
`,
		"users delete": `Deletes a user's SCRAM credentials, every mechanism unless --mechanism
says; the user can no longer authenticate by SCRAM.
`,
		"schemas": `Talks to a schema registry with Confluent's REST API: a broker's
--registry-listen, or Confluent's Schema Registry. The registry is
--schema-registry-url, else $RUNNEL_SCHEMA_REGISTRY_URL, else
http://127.0.0.1:8081. list prints the subjects; get prints a version
(latest by default) as JSON; with --deleted both see soft-deleted ones
too; register prints the id and version the schema
got, or fails when the subject's compatibility level refuses it; compat
prints "compatible" or exits 1 with the reasons; delete soft-deletes a
subject or a version, and with --permanent removes one soft-deleted
before; config prints (with --set, first sets) the compatibility level of a
subject, or the global one without a subject. A registry error prints its
code (40401 subject not found, 409 incompatible, 42201 invalid schema, ...).
`,
		"console": `Serves a web console for the cluster on --http-listen (default
127.0.0.1:8080) until interrupted: the overview (brokers, racks, partitions
online, under-replicated and offline), topics (partitions, leaders, ISR,
offsets, configs, and a message browser from the earliest, latest, an
offset or a time, filtered by key or substring), and consumer groups
(members, assignments, committed offsets and lag), stream applications
(topology graph, instances, tasks and their figures), and with
--schema-registry-url the registry's subjects, versions, the diff between
versions, and compatibility levels. Each page has a JSON
twin under /api. It works against any Kafka-protocol cluster; a Runnel
broker serves the same console itself with --http-listen. The console is
read-only unless --console-allow-writes: then it can create and delete a
topic (a delete confirmed by its name), produce a test record, reset the
offsets of an empty group (confirmed by its name), and alter topic configs.
`,
		"reset": `Prepares a stream application for reprocessing, as Kafka's
kafka-streams-application-reset does: it commits new offsets for the
application's consumer group (its id) on the input topics and deletes the
application's internal topics (ID-...-changelog, ID-...-repartition,
ID-...-topic). The application must be stopped (its group without members).
Each instance's local state is cleared by app.CleanUp() before it runs
again; the rerun then recomputes the same results.
`,
	}
}
