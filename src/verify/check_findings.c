/*
 * check_findings: the finding ids, the list of findings, and what becomes of
 * them.
 *
 * It owns check_ids (every id, whether check.skip may name it; documented
 * one by one in docs/check.md), the list a run fills through check_add(), the
 * verdict (which blockers remain once check.skip is applied) and the three
 * forms a finding takes: a text line and a JSON object on stdout, a log line
 * before migrate. It must never talk to a server: what it prints comes from
 * the findings and the run's connection names alone.
 */
#include "verify/check_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/log.h"

/* Beyond this many findings of one id, the rest are counted, not listed. */
#define CHECK_MAX_PER_ID 20

/*
 * Not skippable: a migration that cannot work at all (wal_level, a standby
 * or too old a source, an object of the schema that needs a table left out),
 * or one that would make the application's writes on
 * the source fail or be lost (no_replica_identity).
 */
static const struct
{
	const char *name;
	bool skippable;
} check_ids[CHECK_ID_COUNT] = {
    [CHECK_ID_SOURCE_VERSION] = {"source_version", false},
    [CHECK_ID_SOURCE_IN_RECOVERY] = {"source_in_recovery", false},
    [CHECK_ID_WAL_LEVEL] = {"wal_level", false},
    [CHECK_ID_REPLICATION_SLOTS] = {"replication_slots", true},
    [CHECK_ID_WAL_SENDERS] = {"wal_senders", true},
    [CHECK_ID_REPLICATION_PRIVILEGE] = {"replication_privilege", true},
    [CHECK_ID_TABLE_READ_PRIVILEGE] = {"table_read_privilege", true},
    [CHECK_ID_PUBLICATION_OWNERSHIP] = {"publication_ownership", true},
    [CHECK_ID_TASK_SLOT] = {"task_slot", true},
    [CHECK_ID_TASK_PUBLICATION] = {"task_publication", true},
    [CHECK_ID_NO_REPLICA_IDENTITY] = {"no_replica_identity", true},
    [CHECK_ID_INSERT_ONLY_DIVERGED] = {"insert_only_diverged", true},
    [CHECK_ID_FULL_IDENTITY_NO_INDEX] = {"full_identity_no_index", true},
    [CHECK_ID_UNLOGGED_TABLE] = {"unlogged_table", true},
    [CHECK_ID_TEMPORARY_TABLE] = {"temporary_table", true},
    [CHECK_ID_LARGE_OBJECTS] = {"large_objects", true},
    [CHECK_ID_FOREIGN_TABLE] = {"foreign_table", true},
    [CHECK_ID_WITH_OIDS] = {"with_oids", true},
    [CHECK_ID_EXTENSION_TABLE] = {"extension_table", true},
    [CHECK_ID_SEQUENCES] = {"sequences", true},
    [CHECK_ID_IDENTITY_COLUMNS] = {"identity_columns", true},
    [CHECK_ID_TRACK_COMMIT_TIMESTAMP] = {"track_commit_timestamp", true},
    [CHECK_ID_WAL_SENDER_TIMEOUT] = {"wal_sender_timeout", true},
    [CHECK_ID_MAX_SLOT_WAL_KEEP_SIZE] = {"max_slot_wal_keep_size", true},
    [CHECK_ID_WAL_RETENTION] = {"wal_retention", true},
    [CHECK_ID_ESTIMATED_SIZE] = {"estimated_size", true},
    [CHECK_ID_TARGET_VERSION] = {"target_version", true},
    [CHECK_ID_TARGET_CREATE_PRIVILEGE] = {"target_create_privilege", true},
    [CHECK_ID_MISSING_EXTENSION] = {"missing_extension", true},
    [CHECK_ID_MISSING_TYPE] = {"missing_type", true},
    [CHECK_ID_MISSING_COLLATION] = {"missing_collation", true},
    [CHECK_ID_MISSING_TABLESPACE] = {"missing_tablespace", true},
    [CHECK_ID_TARGET_HAS_DATA] = {"target_has_data", true},
    [CHECK_ID_MISSING_TARGET_TABLE] = {"missing_target_table", true},
    [CHECK_ID_COLUMN_MISMATCH] = {"column_mismatch", true},
    [CHECK_ID_PG_DUMP] = {"pg_dump", true},
    /* the load refuses the same blockers itself, before its slot */
    [CHECK_ID_SUBSET_DEPENDENCY] = {"subset_dependency", false},
    [CHECK_ID_PGTIDE_SLOT] = {"pgtide_slot", true},
    [CHECK_ID_ROW_SECURITY] = {"row_security", true},
    [CHECK_ID_ENCODING] = {"encoding", true},
};

static const char *const severity_names[] = {"info", "warning", "blocker"};

/* ---- findings ---- */

char *
check_dup_or_empty(const char *s, bool *lost)
{
	char *d = strdup(s != NULL ? s : "");

	if (d == NULL)
		*lost = true;
	return d;
}

/*
 * Adds a finding; past CHECK_MAX_PER_ID of one id it is only counted. Out of
 * memory marks the report, which then fails the run.
 */
void
check_add(Check *c, CheckId id, CheckSeverity sev, const char *object,
          const char *why, const char *fix, const char *fmt, ...)
{
	CheckReport *r = &c->rep;
	CheckFinding *f;
	int same = 0;
	va_list ap;

	for (int i = 0; i < r->n; i++)
		same += r->items[i].id == id;
	if (same >= CHECK_MAX_PER_ID)
	{
		if (r->omitted[id] == 0 || sev > r->omitted_severity[id])
			r->omitted_severity[id] = sev;
		r->omitted[id]++;
		return;
	}
	if (r->n == r->cap)
	{
		int cap = r->cap ? r->cap * 2 : 32;
		CheckFinding *items = realloc(r->items, (size_t) cap * sizeof(*items));

		if (items == NULL)
		{
			r->oom = true;
			return;
		}
		r->items = items;
		r->cap = cap;
	}
	f = &r->items[r->n++];
	memset(f, 0, sizeof(*f));
	f->id = id;
	f->severity = sev;
	va_start(ap, fmt);
	if (vasprintf(&f->message, fmt, ap) < 0)
	{
		f->message = NULL;
		r->oom = true;
	}
	va_end(ap);
	f->object = check_dup_or_empty(object, &r->oom);
	f->why = check_dup_or_empty(why, &r->oom);
	f->fix = check_dup_or_empty(fix, &r->oom);
}

void
check_report_free(CheckReport *r)
{
	for (int i = 0; i < r->n; i++)
	{
		free(r->items[i].object);
		free(r->items[i].message);
		free(r->items[i].why);
		free(r->items[i].fix);
	}
	free(r->items);
	memset(r, 0, sizeof(*r));
}

static bool
skip_named(const TaskConfig *cfg, CheckId id)
{
	for (int i = 0; i < cfg->check_skip.count; i++)
		if (strcmp(cfg->check_skip.items[i], check_ids[id].name) == 0)
			return true;
	return false;
}

/* Whether a finding of this id and severity stops migrate. */
bool
check_blocks(const TaskConfig *cfg, CheckId id, CheckSeverity sev)
{
	return sev == CHECK_BLOCKER &&
	       (!check_ids[id].skippable || !skip_named(cfg, id));
}

/* An unknown id in check.skip is a typo that would silently skip nothing. */
bool
check_validate_skips(const TaskConfig *cfg, Error *err)
{
	for (int i = 0; i < cfg->check_skip.count; i++)
	{
		const char *name = cfg->check_skip.items[i];
		bool known = false;

		for (int k = 0; k < CHECK_ID_COUNT && !known; k++)
			known = strcmp(name, check_ids[k].name) == 0;
		if (!known)
		{
			err_set(err, ERR_CONFIG, "check.skip: unknown finding id \"%s\"",
			        name);
			return err_hint(err, "the ids are listed in docs/check.md and "
			                     "printed by pgtide check");
		}
	}
	return true;
}

/* ---- the verdict ---- */

/* Appends name to a comma-separated list unless it is there already. */
static void
list_add(char *list, size_t cap, const char *name)
{
	size_t len = strlen(list);

	for (const char *p = list; (p = strstr(p, name)) != NULL; p++)
		if ((p == list || p[-1] == ' ') &&
		    (p[strlen(name)] == ',' || p[strlen(name)] == '\0'))
			return;
	snprintf(list + len, cap - len, "%s%s", len ? ", " : "", name);
}

static void
count_one(const TaskConfig *cfg, CheckId id, CheckSeverity sev, int n,
          CheckCounts *k)
{
	k->n[sev] += n;
	if (sev != CHECK_BLOCKER)
		return;
	if (!check_blocks(cfg, id, sev))
	{
		k->skipped += n;
		return;
	}
	if (skip_named(cfg, id))
		list_add(k->unskippable, sizeof(k->unskippable), check_ids[id].name);
	list_add(k->ids, sizeof(k->ids), check_ids[id].name);
	k->blocking += n;
}

void
check_tally(const Check *c, CheckCounts *k)
{
	memset(k, 0, sizeof(*k));
	for (int i = 0; i < c->rep.n; i++)
		count_one(c->cfg, c->rep.items[i].id, c->rep.items[i].severity, 1, k);
	for (int id = 0; id < CHECK_ID_COUNT; id++)
		if (c->rep.omitted[id] > 0)
			count_one(c->cfg, (CheckId) id, c->rep.omitted_severity[id],
			          c->rep.omitted[id], k);
}

void
check_summary_text(const CheckCounts *k, char *buf, size_t cap)
{
	int len = snprintf(buf, cap, "%d blocker%s", k->n[CHECK_BLOCKER],
	                   k->n[CHECK_BLOCKER] == 1 ? "" : "s");

	if (k->skipped > 0 && len > 0 && (size_t) len < cap)
		len += snprintf(buf + len, cap - (size_t) len, " (%d skipped)",
		                k->skipped);
	if (len > 0 && (size_t) len < cap)
		snprintf(buf + len, cap - (size_t) len, ", %d warning%s, %d info%s",
		         k->n[CHECK_WARNING], k->n[CHECK_WARNING] == 1 ? "" : "s",
		         k->n[CHECK_INFO], k->n[CHECK_INFO] == 1 ? "" : "s");
}

bool
check_blocked_error(const CheckCounts *k, const char *before, Error *err)
{
	err_set(err, ERR_BLOCKED, "%scheck found %d blocker%s: %s", before,
	        k->blocking, k->blocking == 1 ? "" : "s", k->ids);
	if (k->unskippable[0])
		return err_hint(err,
		                "fix each blocker (see the findings); %s cannot be "
		                "skipped, even when named in check.skip",
		                k->unskippable);
	return err_hint(err, "fix each blocker (see the findings), or accept one "
	                     "with --skip-check=ID where that is safe");
}

/* The tag after a blocker's line: whether check.skip changed anything. */
static const char *
skip_tag(const TaskConfig *cfg, const CheckFinding *f)
{
	if (f->severity != CHECK_BLOCKER || !skip_named(cfg, f->id))
		return "";
	return check_ids[f->id].skippable ? " [skipped]" : " [cannot be skipped]";
}

/* "object: message; why. Fix: fix. [tag]", the one line a finding gets on
 * stdout and in the log. */
static void
format_finding(const TaskConfig *cfg, const CheckFinding *f, char *buf,
               size_t cap)
{
	snprintf(buf, cap, "%s: %s%s%s.%s%s%s%s", f->object, f->message,
	         f->why[0] ? "; " : "", f->why, f->fix[0] ? " Fix: " : "", f->fix,
	         f->fix[0] ? "." : "", skip_tag(cfg, f));
}

void
check_print_text(const Check *c, const CheckCounts *k, FILE *out)
{
	char summary[256];
	char line[4096];

	for (int sev = CHECK_BLOCKER; sev >= CHECK_INFO; sev--)
	{
		for (int i = 0; i < c->rep.n; i++)
		{
			const CheckFinding *f = &c->rep.items[i];

			if ((int) f->severity != sev)
				continue;
			format_finding(c->cfg, f, line, sizeof(line));
			fprintf(out, "%-7s  %-23s  %s\n", severity_names[sev],
			        check_ids[f->id].name, line);
		}
		for (int id = 0; id < CHECK_ID_COUNT; id++)
			if (c->rep.omitted[id] > 0 &&
			    (int) c->rep.omitted_severity[id] == sev)
				fprintf(out, "%-7s  %-23s  and %d more like the above\n",
				        severity_names[sev], check_ids[id].name,
				        c->rep.omitted[id]);
	}
	check_summary_text(k, summary, sizeof(summary));
	fprintf(out, "pgtide check: source %s, target %s: %s\n", pg_where(c->src),
	        pg_where(c->tgt), summary);
}

static void
json_key(FILE *out, const char *key, const char *value, bool comma)
{
	json_write_string(out, key);
	fputc(':', out);
	json_write_string(out, value);
	if (comma)
		fputc(',', out);
}

void
check_print_json(const Check *c, const CheckCounts *k, FILE *out)
{
	bool first = true;

	fputc('{', out);
	json_key(out, "source", pg_where(c->src), true);
	json_key(out, "target", pg_where(c->tgt), true);
	json_key(out, "task", c->cfg->task, true);
	fprintf(out, "\"resume\":%s,\"findings\":[", c->resume ? "true" : "false");
	for (int sev = CHECK_BLOCKER; sev >= CHECK_INFO; sev--)
		for (int i = 0; i < c->rep.n; i++)
		{
			const CheckFinding *f = &c->rep.items[i];

			if ((int) f->severity != sev)
				continue;
			fputs(first ? "{" : ",{", out);
			first = false;
			json_key(out, "id", check_ids[f->id].name, true);
			json_key(out, "severity", severity_names[sev], true);
			json_key(out, "object", f->object, true);
			json_key(out, "message", f->message, true);
			json_key(out, "why", f->why, true);
			json_key(out, "fix", f->fix, true);
			fprintf(out, "\"skippable\":%s,\"skipped\":%s}",
			        check_ids[f->id].skippable ? "true" : "false",
			        f->severity == CHECK_BLOCKER &&
			                !check_blocks(c->cfg, f->id, f->severity)
			            ? "true"
			            : "false");
		}
	fputs("],\"omitted\":[", out);
	first = true;
	for (int id = 0; id < CHECK_ID_COUNT; id++)
		if (c->rep.omitted[id] > 0)
		{
			fputs(first ? "{" : ",{", out);
			first = false;
			json_key(out, "id", check_ids[id].name, true);
			json_key(out, "severity",
			         severity_names[c->rep.omitted_severity[id]], true);
			fprintf(out, "\"count\":%d}", c->rep.omitted[id]);
		}
	fprintf(out,
	        "],\"counts\":{\"blocker\":%d,\"warning\":%d,\"info\":%d,"
	        "\"skipped\":%d},\"blocked\":%s}\n",
	        k->n[CHECK_BLOCKER], k->n[CHECK_WARNING], k->n[CHECK_INFO],
	        k->skipped, k->blocking > 0 ? "true" : "false");
}

/* The findings at their log levels, then the summary: what migrate shows. */
void
check_log_findings(const Check *c, const CheckCounts *k)
{
	char summary[256];
	char line[4096];

	for (int i = 0; i < c->rep.n; i++)
	{
		const CheckFinding *f = &c->rep.items[i];
		const char *name = check_ids[f->id].name;

		format_finding(c->cfg, f, line, sizeof(line));
		if (check_blocks(c->cfg, f->id, f->severity))
			log_error("check: blocker %s %s", name, line);
		else if (f->severity != CHECK_INFO)
			log_warn("check: %s %s %s", severity_names[f->severity], name,
			         line);
		else
			log_info("check: info %s %s", name, line);
	}
	for (int id = 0; id < CHECK_ID_COUNT; id++)
		if (c->rep.omitted[id] > 0 && c->rep.omitted_severity[id] == CHECK_INFO)
			log_info("check: info %s: and %d more like the above",
			         check_ids[id].name, c->rep.omitted[id]);
		else if (c->rep.omitted[id] > 0)
			log_warn("check: %s %s: and %d more like the above",
			         severity_names[c->rep.omitted_severity[id]],
			         check_ids[id].name, c->rep.omitted[id]);
	check_summary_text(k, summary, sizeof(summary));
	log_info("check: %s", summary);
}
