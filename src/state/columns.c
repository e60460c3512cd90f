/*
 * state columns: the columns each task table's target follows, and the
 * function that makes the target follow a new description of them.
 *
 * tables.src_columns / src_types hold the source's columns (names and
 * format_type(), generated ones left out, as pgoutput leaves them out) as the
 * target last took them: from the load's catalog, then from each Relation
 * message the change stream applied. follow_columns() runs in the applier's
 * batch transaction, just before the first change that uses a new
 * description: it compares the description with that record and with the
 * target table, changes the target (ADD COLUMN, DROP COLUMN, a widening
 * ALTER COLUMN TYPE) and records the description, so the DDL, the record,
 * the changes and the origin's advance commit or vanish together.
 *
 * What it cannot apply safely raises an error that names the statement to
 * run by hand: a column gone while another appeared (a rename cannot be told
 * from a drop and an add by the stream: decision 0017), a type change that
 * does not widen, a new column whose existing rows may hold values the
 * stream never carried. It must never guess: when the record is missing (a
 * task loaded by an older pgtide) a target column the source does not send
 * is left alone, never dropped.
 */
#include "state/state.h"

#include <stdlib.h>

#include "base/buf.h"
#include "state/state_int.h"

/*
 * Whether a's values all fit b unchanged: the integer and float ladders,
 * varchar and text, a larger length or precision, numeric with no fewer
 * digits on either side of the point. format_type() spells both.
 */
#define WIDENS_SQL                                                             \
	"CREATE OR REPLACE FUNCTION @S.type_widens(a text, b text)"                \
	" RETURNS boolean LANGUAGE sql IMMUTABLE AS $fn$"                          \
	" SELECT (a, b) IN (('smallint', 'integer'), ('smallint', 'bigint'),"      \
	"  ('integer', 'bigint'), ('real', 'double precision'),"                   \
	"  ('character varying', 'text'), ('text', 'character varying'))"          \
	" OR (a IN ('smallint', 'integer', 'bigint') AND b = 'numeric')"           \
	" OR (a ~ '^character varying\\(' AND b IN ('text', 'character varying'))" \
	" OR (a ~ '^numeric\\(' AND b = 'numeric')"                                \
	" OR (a ~ '\\(\\d+\\)' AND b = regexp_replace(a, '\\(\\d+\\)', ''))"       \
	" OR (a ~ '\\(\\d+\\)' AND b ~ '\\(\\d+\\)'"                               \
	"  AND regexp_replace(a, '\\(\\d+\\)', '()')"                              \
	"   = regexp_replace(b, '\\(\\d+\\)', '()')"                               \
	"  AND substring(b from '\\((\\d+)\\)')::int"                              \
	"   >= substring(a from '\\((\\d+)\\)')::int)"                             \
	" OR (a ~ '^numeric\\(\\d+,\\d+\\)$' AND b ~ '^numeric\\(\\d+,\\d+\\)$'"   \
	"  AND split_part(substring(b from '\\((.*)\\)'), ',', 2)::int"            \
	"   >= split_part(substring(a from '\\((.*)\\)'), ',', 2)::int"            \
	"  AND split_part(substring(b from '\\((.*)\\)'), ',', 1)::int"            \
	"   - split_part(substring(b from '\\((.*)\\)'), ',', 2)::int"             \
	"   >= split_part(substring(a from '\\((.*)\\)'), ',', 1)::int"            \
	"   - split_part(substring(a from '\\((.*)\\)'), ',', 2)::int)"            \
	" $fn$;"

/*
 * p_flags, one text per column (cdc/relcols.h): 'm' existing rows read
 * p_missing (the source's fast default), 'u' existing rows hold values no
 * catalog says, which the caller reads from the source for each column this
 * returns: new since the record, even when another source table loading
 * into the same target table added it there first (p_keyed: the rows can
 * be matched), 'g' the column is gone from
 * the source since, 'd' a default now (p_defaults), 'n' NOT NULL (set
 * unless the rows are to be read). A column changes on the target's root
 * when the target is a partition: a partition's columns are its root's.
 */
/* in the function's text: a newer pgtide replaces an older one */
#define FOLLOW_VERSION "pgtide follow_columns 1"

#define FOLLOW_SQL                                                             \
	"CREATE OR REPLACE FUNCTION @S.follow_columns(p_task text,"                \
	" p_schema text, p_name text, p_target text, p_names text[],"              \
	" p_types text[], p_missing text[], p_flags text[], p_defaults text[],"    \
	" p_keyed boolean) RETURNS SETOF text LANGUAGE plpgsql AS $fn$"            \
	" /* " FOLLOW_VERSION " */ DECLARE"                                        \
	"  root regclass := p_target::regclass;"                                   \
	"  src text := quote_ident(p_schema) || '.' || quote_ident(p_name);"       \
	"  base_names text[]; base_types text[];"                                  \
	"  tgt_names text[]; tgt_types text[];"                                    \
	"  gone text[] := '{}'; added text[] := '{}';"                             \
	"  i int; j int; col text; tt text; stmt text;"                            \
	" BEGIN"                                                                   \
	"  SELECT t.src_columns, t.src_types INTO base_names, base_types"          \
	"   FROM @S.tables t WHERE t.task = p_task AND t.src_schema = p_schema"    \
	"   AND t.src_name = p_name;"                                              \
	"  IF base_names IS NOT DISTINCT FROM p_names"                             \
	"   AND base_types IS NOT DISTINCT FROM p_types THEN RETURN; END IF;"      \
	"  WHILE (SELECT c.relispartition FROM pg_catalog.pg_class c"              \
	"   WHERE c.oid = root) LOOP"                                              \
	"   SELECT h.inhparent INTO root FROM pg_catalog.pg_inherits h"            \
	"    WHERE h.inhrelid = root;"                                             \
	"  END LOOP;"                                                              \
	"  EXECUTE format('SELECT array_agg(attname::text ORDER BY attnum),"       \
	" array_agg(pg_catalog.format_type(atttypid, atttypmod) ORDER BY"          \
	" attnum) FROM pg_catalog.pg_attribute WHERE attrelid = %s"                \
	" AND attnum > 0 AND NOT attisdropped %s', p_target::regclass::oid,"       \
	"   CASE WHEN current_setting('server_version_num')::int >= 120000"        \
	"   THEN 'AND length(attgenerated::text) = 0' ELSE '' END)"                \
	"   INTO tgt_names, tgt_types;"                                            \
	"  tgt_names := coalesce(tgt_names, '{}');"                                \
	"  IF base_names IS NOT NULL THEN"                                         \
	"   SELECT coalesce(array_agg(b ORDER BY o), '{}') INTO gone"              \
	"    FROM unnest(base_names) WITH ORDINALITY u(b, o)"                      \
	"    WHERE b <> ALL (p_names) AND b = ANY (tgt_names);"                    \
	"  END IF;"                                                                \
	"  SELECT coalesce(array_agg(n ORDER BY o), '{}') INTO added"              \
	"   FROM unnest(p_names) WITH ORDINALITY u(n, o)"                          \
	"   WHERE n <> ALL (tgt_names);"                                           \
	"  IF cardinality(gone) > 0 AND cardinality(added) > 0 THEN"               \
	"   RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',"   \
	"    MESSAGE = format('source table %s no longer has column(s) %s and"     \
	" has new column(s) %s: pgtide cannot tell a rename from a drop and an"    \
	" add, and does not guess', src, array_to_string(gone, ', '),"             \
	"     array_to_string(added, ', ')),"                                      \
	"    HINT = format('if it was a rename, run on the target: ALTER TABLE %s" \
	" RENAME COLUMN %I TO %I; if a drop and an add: ALTER TABLE %s DROP"       \
	" COLUMN %I; ALTER TABLE %s ADD COLUMN %I %s, with the new column''s"      \
	" values for the rows already there. Then run pgtide again: it goes on"    \
	" from the same change', root, gone[1], added[1], root, gone[1], root,"    \
	"     added[1], p_types[array_position(p_names, added[1])]);"              \
	"  END IF;"                                                                \
	"  FOR i IN 1 .. coalesce(array_length(p_names, 1), 0) LOOP"               \
	"   j := array_position(base_names, p_names[i]);"                          \
	"   tt := tgt_types[array_position(tgt_names, p_names[i])];"               \
	"   CONTINUE WHEN j IS NULL OR base_types[j] = p_types[i] OR tt IS NULL"   \
	"    OR tt = p_types[i];"                                                  \
	"   IF tt <> base_types[j] OR NOT @S.type_widens(tt, p_types[i]) THEN"     \
	"    RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',"  \
	"     MESSAGE = format('column %I of source table %s changed type from"    \
	" %s to %s, and pgtide changes a column''s type on the target only when"   \
	" every value fits the new type unchanged', p_names[i], src,"              \
	"      base_types[j], p_types[i]),"                                        \
	"     HINT = format('run on the target: ALTER TABLE %s ALTER COLUMN %I"    \
	" TYPE %s USING ... (the conversion the source used), then run pgtide"     \
	" again', root, p_names[i], p_types[i]);"                                  \
	"   END IF;"                                                               \
	"   EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s', root,"        \
	"    p_names[i], p_types[i]);"                                             \
	"  END LOOP;"                                                              \
	"  FOREACH col IN ARRAY gone LOOP"                                         \
	"   EXECUTE format('ALTER TABLE %s DROP COLUMN IF EXISTS %I', root, col);" \
	"  END LOOP;"                                                              \
	"  FOREACH col IN ARRAY added LOOP"                                        \
	"   i := array_position(p_names, col);"                                    \
	"   IF strpos(p_flags[i], 'u') > 0 AND NOT p_keyed THEN"                   \
	"    RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',"  \
	"     MESSAGE = format('column %I was added to source table %s, whose"     \
	" rows already there hold values for it that no change carried (a"         \
	" volatile default, or the table was rewritten since), and the table has"  \
	" no key to match them on the target', col, src),"                         \
	"     HINT = format('add it on the target with the values the source''s"   \
	" rows hold (ALTER TABLE %s ADD COLUMN %I %s, then fill it), or pgtide"    \
	" clean and migrate again; then run pgtide again', root, col,"             \
	"      p_types[i]);"                                                       \
	"   END IF;"                                                               \
	"   stmt := format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS %I %s', root," \
	"    col, p_types[i]);"                                                    \
	"   IF strpos(p_flags[i], 'm') > 0 THEN"                                   \
	"    stmt := stmt || format(' DEFAULT %L::%s', p_missing[i], p_types[i]);" \
	"   END IF;"                                                               \
	"   EXECUTE stmt;"                                                         \
	"   IF strpos(p_flags[i], 'd') > 0 THEN"                                   \
	"    BEGIN"                                                                \
	"     EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s',"     \
	"      root, col, p_defaults[i]);"                                         \
	"    EXCEPTION WHEN OTHERS THEN"                                           \
	"     RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state'," \
	"      MESSAGE = format('the source''s new column %I of %s has the"        \
	" default %s, which the target refuses: %s', col, src, p_defaults[i],"     \
	"       SQLERRM),"                                                         \
	"      HINT = format('create what the default needs on the target (a"      \
	" sequence, a function), then run pgtide again');"                         \
	"    END;"                                                                 \
	"   ELSIF strpos(p_flags[i], 'm') > 0 THEN"                                \
	"    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', root,"  \
	"     col);"                                                               \
	"   END IF;"                                                               \
	"   IF strpos(p_flags[i], 'u') = 0 AND strpos(p_flags[i], 'n') > 0 THEN"   \
	"    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', root,"  \
	"     col);"                                                               \
	"   END IF;"                                                               \
	"  END LOOP;"                                                              \
	"  FOR i IN 1 .. coalesce(array_length(p_names, 1), 0) LOOP"               \
	"   CONTINUE WHEN strpos(p_flags[i], 'u') = 0 OR NOT p_keyed"              \
	"    OR p_names[i] = ANY (coalesce(base_names, tgt_names));"               \
	"   RETURN NEXT p_names[i];"                                               \
	"  END LOOP;"                                                              \
	"  UPDATE @S.tables t SET src_columns = p_names, src_types = p_types"      \
	"   WHERE t.task = p_task AND t.src_schema = p_schema"                     \
	"   AND t.src_name = p_name;"                                              \
	" END $fn$;"

bool
state_columns_install(const State *s, Error *err)
{
	const char *params[1] = {"%" FOLLOW_VERSION "%"};
	PGresult *res;
	bool current;

	if (!state_run(s,
	               "ALTER TABLE @S.tables ADD COLUMN IF NOT EXISTS src_columns"
	               " text[], ADD COLUMN IF NOT EXISTS src_types text[]",
	               0, NULL, NULL, err) ||
	    !state_run(s,
	               "SELECT 1 FROM pg_catalog.pg_proc WHERE proname ="
	               " 'follow_columns' AND pronamespace = '@S'::regnamespace"
	               " AND prosrc LIKE $1",
	               1, params, &res, err))
		return false;
	current = PQntuples(res) > 0;
	PQclear(res);
	/* replaced only when older: two processes opening the state at once
	   would otherwise both rewrite it, and one fails */
	return current || state_run(s, WIDENS_SQL FOLLOW_SQL, 0, NULL, NULL, err);
}

bool
state_columns_record(const State *s, const CatTable *t, Error *err)
{
	Buf names = BUF_INIT(STATE_COLUMNS_MAX),
	    types = BUF_INIT(STATE_COLUMNS_MAX);
	const char *params[5] = {s->task, t->schema, t->name, NULL, NULL};
	bool ok;

	buf_add(&names, "{", 1, err);
	buf_add(&types, "{", 1, err);
	for (int i = 0; i < t->ncols; i++)
	{
		/* the target's names: the follow statement compares the target's
		   side (the stream sends it so, route/rename) */
		pg_array_item(&names, catalog_tgt_col(&t->cols[i]), err);
		pg_array_item(&types, t->cols[i].type_name, err);
	}
	buf_add(&names, "}", 1, err);
	buf_add(&types, "}", 1, err);
	ok = buf_check(&names, err) && buf_check(&types, err);
	params[3] = buf_str(&names);
	params[4] = buf_str(&types);
	ok = ok && state_run(s,
	                     "UPDATE @S.tables SET src_columns = $4::text[],"
	                     " src_types = $5::text[] WHERE task = $1"
	                     " AND src_schema = $2 AND src_name = $3",
	                     5, params, NULL, err);
	buf_free(&names);
	buf_free(&types);
	return ok;
}

char *
state_table_rename_sql(const State *s)
{
	return state_sql(s, "WITH io AS (UPDATE @S.insert_only SET src_schema = $4,"
	                    " src_name = $5 WHERE task = $1 AND src_schema = $2"
	                    " AND src_name = $3)"
	                    " UPDATE @S.tables SET src_schema = $4, src_name = $5,"
	                    " tgt_qname = $6 WHERE task = $1 AND src_schema = $2"
	                    " AND src_name = $3");
}

char *
state_follow_columns_sql(const State *s)
{
	return state_sql(s, "SELECT * FROM @S.follow_columns($1, $2, $3, $4,"
	                    " $5::text[], $6::text[], $7::text[], $8::text[],"
	                    " $9::text[], $10::boolean)");
}
