/*
 * A write runs the triggers of the table it writes, and of every table its foreign keys'
 * actions reach (ON DELETE CASCADE runs as the referencing table's owner) or its rules write,
 * with what their WHEN conditions, constraints and index expressions call; a DDL statement runs
 * the event triggers. That code runs with the power of the session, whoever wrote it (code run under SET
 * ROLE may RESET ROLE). So before the module writes the app's tables, its own bookkeeping in
 * x402_migrations or its backups in x402_backup, it refuses where such code, or one of those
 * tables, or schema x402_backup,
 * belongs to a role that a lesser login role (one that cannot act as the session's user) can act
 * as: that login could change it at any moment.
 * Code of a role nobody logs in as (a platform's own, say) can be changed only by those it trusts.
 *
 * A role with the TRIGGER privilege can attach a trigger too, and Supabase grants it on every table in
 * public to anon, authenticated and service_role, which its `authenticator` login can become.
 * That cannot be refused without refusing every Supabase project, so it is fenced instead: with
 * `lock`, the check first takes ROW EXCLUSIVE on the same tables, in the transaction that then
 * writes them. CREATE TRIGGER needs SHARE ROW EXCLUSIVE, which conflicts, so no trigger can be
 * added between the check and the transaction's end; ROW EXCLUSIVE is what a write takes anyway,
 * and blocks no reader or writer.
 */

import { MIGRATION_TABLE_SCHEMA } from './module-schemas.js'
import {
  CATALOG_CHECK_BEGIN,
  CATALOG_CHECK_DECLARE,
  LESSER_LOGIN_ROLES_SQL,
} from './shadowed-catalog.js'

/** The schema where downs keep the rows they take out (down-guard.ts and 005's down make it). */
const BACKUP_SCHEMA = 'x402_backup'

/** SQLSTATE of the refusal: insufficient_privilege, as for a shadowed catalog. */
export const LESSER_TRIGGERS_STATE = '42501'

/**
 * One `DO` block that raises {@link LESSER_TRIGGERS_STATE}, naming each cause, where writing
 * the tables of the session's search_path (pg_catalog aside) and of the module's bookkeeping
 * schema (x402_migrations, which every run writes), their partitions, and the tables their
 * foreign keys' actions and their rules' actions reach, would run code of a role that a lesser login role can act as
 * (LESSER_LOGIN_ROLES_SQL):
 * - such a table owned by such a role;
 * - a function such a role owns (one in its pg_temp schema included) that an enabled trigger on
 *   such a table calls, or its WHEN condition, a constraint, an index's expression or a rule
 *   (not a foreign key's referenced table or its index: the key's check reads them as their
 *   owner, and runs no code of theirs);
 * - an enabled event trigger whose function such a role owns;
 * - schema x402_backup owned by such a role, or, where it does not exist yet, a lesser login
 *   role that may create it (it could, in the middle of a run): its owner may drop the backups.
 * With `lock`, it first locks those tables in ROW EXCLUSIVE mode (see above): run it inside the
 * transaction that writes them. It reads the catalog with pg_catalog alone on the search_path,
 * and puts the path back before it ends.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await sql.raw(lesserTriggersSql({ lock: true })).execute(trx)
 *   await sql`UPDATE ai_models SET …`.execute(trx)
 * })
 * ```
 */
export function lesserTriggersSql(options: { lock: boolean }): string {
  return `DO $lesser$
DECLARE
  schemas pg_catalog.name[] := pg_catalog.current_schemas(false);
  tables pg_catalog.oid[];
  found pg_catalog.text;
  ${CATALOG_CHECK_DECLARE}
BEGIN
  ${CATALOG_CHECK_BEGIN}
  WITH RECURSIVE scope(oid) AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')
       AND ((n.nspname = ANY (schemas) AND n.nspname <> 'pg_catalog') OR n.nspname IN ('${MIGRATION_TABLE_SCHEMA}', '${BACKUP_SCHEMA}'))
    UNION
    SELECT reached.oid FROM scope s CROSS JOIN LATERAL (
      SELECT k.conrelid FROM pg_constraint k
       WHERE k.confrelid = s.oid AND k.contype = 'f'
         AND (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd'))
      UNION ALL
      SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = s.oid
      UNION ALL
      -- A rule's action writes other tables, and runs their triggers with the writer's power.
      SELECT d.refobjid FROM pg_rewrite r
        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
        JOIN pg_class c ON c.oid = d.refobjid AND c.relkind IN ('r', 'p')
       WHERE r.ev_class = s.oid AND r.rulename <> '_RETURN'
    ) AS reached(oid)
  )
  SELECT array_agg(oid ORDER BY oid) INTO tables FROM scope;
  ${
    options.lock
      ? `IF tables IS NOT NULL THEN
    EXECUTE (SELECT 'LOCK TABLE ' || string_agg(t::regclass::text, ', ' ORDER BY t) || ' IN ROW EXCLUSIVE MODE'
               FROM unnest(tables) AS t
              WHERE has_table_privilege(t, 'INSERT, UPDATE, DELETE, TRUNCATE'));
  END IF;`
      : ''
  }
  WITH lesser_roles AS (${LESSER_LOGIN_ROLES_SQL}),
  -- The code attached to those tables that the module's writes run (see below), with its
  -- expression as PostgreSQL stores it.
  attached AS (
            SELECT format('trigger %I', t.tgname) AS what, t.tgrelid AS tbl, 'pg_trigger'::regclass AS classid, t.oid AS objid,
                   t.tgqual::text AS tree, NULL::oid[] AS referenced
              FROM pg_trigger t WHERE t.tgrelid = ANY (tables) AND NOT t.tgisinternal AND t.tgenabled <> 'D'
            UNION ALL
            -- A foreign key's check reads the referenced table's key as that table's owner (FOR KEY
            -- SHARE, no trigger, no policy; it cannot reference a view): that table and its unique
            -- index run no code with the writer's power (on Supabase, auth.users belongs to the
            -- login supabase_auth_admin). Its operators and types still count.
            SELECT format('constraint %I', k.conname), k.conrelid, 'pg_constraint'::regclass, k.oid, k.conbin::text,
                   CASE WHEN k.contype = 'f' THEN ARRAY[k.confrelid, k.conindid] END
              FROM pg_constraint k WHERE k.conrelid = ANY (tables)
            UNION ALL
            SELECT format('index %s', i.indexrelid::regclass), i.indrelid, 'pg_class'::regclass, i.indexrelid,
                   concat(i.indexprs::text, i.indpred::text), NULL
              FROM pg_index i WHERE i.indrelid = ANY (tables)
            UNION ALL
            -- A stored generated column is computed again by every UPDATE of its row.
            SELECT format('generated column %I', a.attname), ad.adrelid, 'pg_attrdef'::regclass, ad.oid, ad.adbin::text, NULL
              FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
             WHERE ad.adrelid = ANY (tables) AND a.attgenerated <> ''
            UNION ALL
            SELECT format('rule %I', r.rulename), r.ev_class, 'pg_rewrite'::regclass, r.oid, concat(r.ev_qual::text, r.ev_action::text),
                   NULL
              FROM pg_rewrite r WHERE r.ev_class = ANY (tables)
  )
  SELECT string_agg(problem, '; ' ORDER BY ordinal, problem) INTO found FROM (
    SELECT 1 AS ordinal, format('table %s is owned by %s', c.oid::regclass, pg_get_userbyid(c.relowner)) AS problem
      FROM pg_class c
     WHERE c.oid = ANY (tables)
       AND c.relowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- What the module's writes run of the code attached to a table: a trigger (its function and
    -- its WHEN condition), a constraint, an index's expressions, a rule. Each function they call
    -- by name is in pg_depend, an operator's by its function. Not defaults (the module inserts
    -- into no app table; Supabase's often call auth.uid()), nor policies (its writers bypass
    -- row level security).
    SELECT 2, format('%s on %s calls %s', attached.what, attached.tbl::regclass, code.what)
      FROM attached
      JOIN pg_depend d ON d.classid = attached.classid AND d.objid = attached.objid
      CROSS JOIN LATERAL (
        -- A function, or an operator's, of such a role; a type of such a role (a domain's CHECK,
        -- its input and output run its code); a relation of such a role (a view runs its query);
        SELECT format('%s, owned by %s', p.oid::regprocedure, pg_get_userbyid(p.proowner)) AS what
          FROM pg_proc p
         WHERE p.oid = CASE d.refclassid
                         WHEN 'pg_proc'::regclass THEN d.refobjid
                         WHEN 'pg_operator'::regclass THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = d.refobjid)
                       END
           AND p.proowner IN (SELECT oid FROM lesser_roles)
        UNION ALL
        SELECT format('type %s, owned by %s', ty.oid::regtype, pg_get_userbyid(ty.typowner))
          FROM pg_type ty
         WHERE d.refclassid = 'pg_type'::regclass AND ty.oid = d.refobjid AND ty.typowner IN (SELECT oid FROM lesser_roles)
        UNION ALL
        SELECT format('relation %s, owned by %s', c.oid::regclass, pg_get_userbyid(c.relowner))
          FROM pg_class c
         WHERE d.refclassid = 'pg_class'::regclass AND c.oid = d.refobjid AND c.relowner IN (SELECT oid FROM lesser_roles)
           AND NOT c.oid = ANY (coalesce(attached.referenced, '{}'))
      ) AS code
    UNION ALL
    -- pg_catalog's functions that run SQL given as text: what they run, pg_depend cannot follow
    -- (nor does it record pg_catalog's own objects), so they are found in the expression.
    SELECT 2, format('%s on %s calls %s, which runs SQL given as text', attached.what, attached.tbl::regclass,
                     p.oid::regprocedure)
      FROM attached JOIN pg_proc p
        ON p.pronamespace = 'pg_catalog'::regnamespace AND (p.proname ~ '_to_xml' OR p.proname = 'ts_stat')
       AND attached.tree ~ (':funcid ' || p.oid || '\\M')
    UNION ALL
    SELECT 2, format('column %I of %s is of type %s, owned by %s', a.attname, a.attrelid::regclass, ty.oid::regtype,
                     pg_get_userbyid(ty.typowner))
      FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
     WHERE a.attrelid = ANY (tables) AND a.attnum > 0 AND NOT a.attisdropped
       AND ty.typowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    SELECT 3, format('event trigger %I calls %s, owned by %s', e.evtname, e.evtfoid::regprocedure, pg_get_userbyid(p.proowner))
      FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid
     WHERE e.evtenabled <> 'D'
       AND p.proowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    -- Where the downs keep what they take out: its owner may drop every backup.
    SELECT 4, format('schema %I is owned by %s', n.nspname, pg_get_userbyid(n.nspowner))
      FROM pg_namespace n
     WHERE n.nspname = '${BACKUP_SCHEMA}'
       AND n.nspowner IN (SELECT oid FROM lesser_roles)
    UNION ALL
    SELECT DISTINCT 4, format('%s may create schema ${BACKUP_SCHEMA}%s, where the downs would put their backups', r.rolname,
                              CASE WHEN g.oid <> r.oid THEN format(' (as %s)', g.rolname) ELSE '' END)
      FROM lesser_roles g JOIN pg_roles r ON r.oid = g.login
     WHERE NOT EXISTS (SELECT FROM pg_namespace n WHERE n.nspname = '${BACKUP_SCHEMA}')
       AND has_database_privilege(g.oid, current_database(), 'CREATE')
  ) AS problems;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '${LESSER_TRIGGERS_STATE}', MESSAGE = pg_catalog.format(
      'Writing the app''s tables or the module''s bookkeeping in this session of role %s would let roles that cannot act as %s run their code '
      'with its power, or drop the backups a down makes: %s. Nothing was changed. Find out who made each; where it '
      'is your own, give it to a role that can act as %s (ALTER FUNCTION, ALTER TABLE or ALTER SCHEMA … OWNER TO); '
      'revoke the right to create schemas in the database (REVOKE CREATE ON DATABASE) from a role that should not '
      'have it; or run the command as a role the owners can act as.',
      session_user, session_user, found, session_user);
  END IF;
  -- Put back only where nothing was found: the message is made with pg_catalog alone on the path,
  -- and an error rolls the setting back with its transaction.
  PERFORM pg_catalog.set_config('search_path', saved, true);
END
$lesser$`
}
