/*
 * DDL in a trusted body that makes or changes code: CREATE [OR REPLACE] FUNCTION or PROCEDURE,
 * ALTER FUNCTION, PROCEDURE or ROUTINE; ALTER TABLE, TRIGGER, EVENT TRIGGER, EXTENSION. The check reads a body before it runs; such a statement
 * changes, as it runs, code the check has read (or not), which the same write may run next with
 * the writer's power: a function made again from a string in pieces (no whole name to read), a
 * path taken away (RESET, TO DEFAULT, FROM CURRENT) or given as a string (review rev4). Each such
 * statement is read as PostgreSQL's lexer reads it (comments out, strings and quoted names
 * whole), and only the forms below are taken as read; any other is refused, unread:
 * - CREATE [OR REPLACE] FUNCTION|PROCEDURE name(args) with RETURNS, LANGUAGE sql or plpgsql, the
 *   body as one dollar-quoted string (its text is then read as the body's own, every name and
 *   statement in it), the attributes below, and SET search_path = names;
 * - ALTER FUNCTION|PROCEDURE|ROUTINE name[(args)] with SECURITY DEFINER or INVOKER, LEAKPROOF,
 *   volatility, STRICT, PARALLEL, COST, ROWS, SET SCHEMA name, or SET search_path = names (the
 *   schemas the check then counts as on a reached path: searchPathListSql);
 * - ALTER TABLE without ENABLE, INHERIT, ATTACH, SET SCHEMA, OWNER, RENAME, REPLICA, FORCE; no
 *   ALTER FOREIGN TABLE, TRIGGER, EVENT TRIGGER or EXTENSION; no ANALYZE, VACUUM, CLUSTER,
 *   REINDEX or COPY … PROGRAM (they run code the check does not follow).
 * Supabase's event trigger functions hold only such forms (grant_pg_net_access's ALTER function
 * net.http_get(…) SECURITY DEFINER and SET search_path = net; grant_pg_graphql_access's create or
 * replace function graphql_public.graphql(…) … language sql as $$ … $$).
 */

/**
 * A SQL expression of the text `s`: string constants, with chr() for a backslash and each control
 * character, so that it reads the same whatever standard_conforming_strings is, and holds no
 * character that a script's reader could mistake.
 */
function sqlText(s: string): string {
  const special = /([\u0000-\u001f\u007f\\])/
  const parts = s
    .split(special)
    .filter((part) => part !== '')
    .map((part) =>
      special.test(part) && part.length === 1
        ? `chr(${part.charCodeAt(0)})`
        : `'${part.replaceAll("'", "''")}'`,
    )
  return `(${parts.join(' || ')})`
}

/**
 * A regular expression's bracket of a character that may start a name: a letter, `_`, or any
 * beyond ASCII (as PostgreSQL's lexer takes them); the bracket lists the rest of ASCII.
 */
const NAME_START = '[^\u0001-@[-^`{-\u007f]'

/** The same of a character that may go on with a name: those, a digit, `$`. */
const NAME_CHAR = '[^\u0001-#%-/:-@[-^`{-\u007f]'

/**
 * A look-behind: what follows is no part of a name (an `E` before a quote, a `$` that opens a
 * quote). Not a lone `$` or a number before it: `$E'…'` is a `$` and an E string, `1$a$…$a$` a
 * number and a dollar-quoted string (review rev5 T2, T3).
 */
const OUTSIDE_NAME = `(?<!${NAME_START}${NAME_CHAR}*)`

/** A dollar quote's tag: a name that starts with no digit and holds no `$`, or none. */
const TAG = `${NAME_START}[^\u0001-/:-@[-^\`{-\u007f]*?|`

/**
 * White space with a line break, and `--` comments (one before the line break too): what joins
 * two pieces of a string into one, as the lexer's whitespace_with_newline (an E string's next
 * piece is read with its escapes: review rev5 T4, rev6 T4c; `\v` is space from PostgreSQL 16: T4v).
 */
const STRING_JOIN = '(?:[ \t\f\v]|--[^\n\r]*)*[\n\r](?:[[:space:]]|--[^\n\r]*[\n\r])*'
const E_PIECE = "'(?:[^'\\\\]|\\\\.|'')*?'"

/**
 * One token that the lexer reads whole, where it starts (leftmost first, and the shortest, by the
 * non-greedy `{1,1}?` around the alternatives: a regular expression of alternatives is otherwise
 * the longest, and two dollar-quoted strings one): a quoted name (group 1), an E'…' string (2, its
 * quote), a '…' string (3), a dollar-quoted string (4, its `$`; 5 its tag), a `--` comment, a
 * block comment (nested ones are refused before: lesser-triggers.ts's NESTED_COMMENT).
 */
const TOKEN =
  '(?:("(?:[^"]|"")*?")(?!")' +
  `|${OUTSIDE_NAME}[eE](')${E_PIECE.slice(1)}(?:${STRING_JOIN}${E_PIECE})*?(?!')(?!${STRING_JOIN}')` +
  "|(')(?:[^']|'')*?'(?!')" +
  `|${OUTSIDE_NAME}([$])(${TAG})[$].*?[$]\\5[$]` +
  '|--[^\n\r]*?(?=[\n\r]|$)' +
  '|/[*].*?[*]/){1,1}?'

/**
 * SQL (an expression): the text `text` as the statements read it: each comment as a space, each
 * string as `''` and each dollar-quoted one as `$$` (their text out), quoted names as written.
 */
function shapeSql(text: string): string {
  return `regexp_replace(${text}, ${sqlText(TOKEN)}, ${sqlText(' \\1\\2\\2\\3\\3\\4\\4 ')}, 'g')`
}

/** A dollar-quoted string anywhere (in a comment or a string too: read, over, never under), its text group 2. */
const DOLLAR_STRING = `(?:${OUTSIDE_NAME}[$](${TAG})[$](.*?)[$]\\1[$]){1,1}?`

const S = '[[:space:]]'
const NAME = '(?:"(?:[^"]|"")*"|[[:alpha:]_][[:alnum:]_$]*)'
const QUALIFIED = `${NAME}(?:${S}*[.]${S}*${NAME}){0,2}`
/** Arguments' list: names, types (one level of parentheses), defaults; no `;`. */
const ARGUMENTS = `(?:[^()"]|"(?:[^"]|"")*"|[(][^()]*[)])*`
/** A schema on a path: a name, quoted or not; not DEFAULT, no string. */
const PATH_SCHEMA = `(?!default(?![[:alnum:]_$]))${NAME}`
const PATH_SET = `set${S}+"?search_path"?${S}*(?:=|to(?![[:alnum:]_$]))${S}*(${PATH_SCHEMA}(?:${S}*,${S}*${PATH_SCHEMA})*)`
const ATTRIBUTE =
  `(?:(?:external${S}+)?security${S}+(?:definer|invoker)|(?:not${S}+)?leakproof|immutable|stable|volatile|strict` +
  `|called${S}+on${S}+null${S}+input|returns${S}+null${S}+on${S}+null${S}+input|parallel${S}+(?:unsafe|restricted|safe)` +
  `|(?:cost|rows)${S}+[0-9.]+|${PATH_SET})`
const TYPE = `${QUALIFIED}(?:${S}+(?:precision|varying|with|without|time|zone))*(?:${S}*[(][0-9, ]*[)])?(?:${S}*[[][0-9]*[]])*`
const CREATE_CLAUSE = `(?:returns${S}+(?:setof${S}+)?${TYPE}|returns${S}+table${S}*[(]${ARGUMENTS}[)]|language${S}+"?(?:sql|plpgsql)"?(?![[:alnum:]_$])|as${S}*[$][$]|window|${ATTRIBUTE})`

/** The forms of {@link CODE_STATEMENT} taken as read (for `~*`): see the file's comment. */
const READ_FORM =
  `^(?:alter${S}+(?:function|procedure|routine)${S}+${QUALIFIED}${S}*(?:[(]${ARGUMENTS}[)])?` +
  `(?:${S}*(?:${ATTRIBUTE}|set${S}+schema${S}+${NAME}))+(?:${S}+restrict)?` +
  `|create${S}+(?:or${S}+replace${S}+)?(?:function|procedure)${S}+${QUALIFIED}${S}*[(]${ARGUMENTS}[)]` +
  `(?:${S}*${CREATE_CLAUSE})+` +
  // An ALTER TABLE that brings in no code: not ENABLE (a disabled trigger, rule, row security),
  // INHERIT, ATTACH, SET SCHEMA, OWNER, RENAME, REPLICA, FORCE (review rev5 D1–D4); a column
  // dropped or retyped is down-guard's to refuse.
  `|alter${S}+table(?!.*(?<![[:alnum:]_$])(?:enable|inherit|attach|schema|owner|rename|replica|force)(?![[:alnum:]_$])).*` +
  `)${S}*$`

/**
 * A statement that makes or changes code, from its first word to its `;` (quoted names whole):
 * of a function (read in the forms of {@link READ_FORM}); of a table, a trigger, an event trigger
 * or an extension (none read: ENABLE of a disabled trigger, INHERIT, ATTACH PARTITION, SET SCHEMA
 * bring code in that the check did not read as the write's: review rev5 D1–D4).
 */
const CODE_STATEMENT =
  `(?<![[:alnum:]_$])((?:(?:alter|create)${S}+(?:or${S}+replace${S}+)?(?:function|procedure|routine)` +
  `|alter${S}+(?:(?:foreign${S}+)?table|(?:event${S}+)?trigger|extension))(?![[:alnum:]_$])(?:[^;"]|"(?:[^"]|"")*")*)`

/**
 * ANALYZE, VACUUM, CLUSTER or REINDEX at a statement's start, to its `;`: they run the index
 * expressions, statistics and constraints of the tables they work on, as those tables' owners,
 * and of every table where they name none, or an index, a schema or the database (review rev10
 * R10-4); not a variable of that name given a value (review rev11 R11-8). And COPY … PROGRAM,
 * which runs a shell command that may open a session of its own (review rev11 R11-4). None is a
 * form read.
 */
const MAINTENANCE_STATEMENT =
  `(?:^|;|(?<![[:alnum:]_$])(?:begin|then|else|loop))${S}*` +
  `((?:(?:analy[sz]e|vacuum|cluster|reindex)(?![[:alnum:]_$])(?!${S}*(?::=|=|[.[]))` +
  `|copy(?![[:alnum:]_$])(?=(?:[^;"]|"(?:[^"]|"")*")*?(?<![[:alnum:]_$])program(?![[:alnum:]_$])))` +
  `(?:[^;"]|"(?:[^"]|"")*")*)`

/**
 * SQL (a scalar subquery): the statements that make or change code (CREATE FUNCTION, ALTER
 * FUNCTION, …), or run a table's ({@link MAINTENANCE_STATEMENT}), of the body text `raw`, and of each dollar-quoted string in it (the body of a
 * function it makes, read as code), each as {@link shapeSql} reads it; none where the body holds
 * none of the words function, procedure and routine (`words`, its words).
 *
 * @example
 * ```ts
 * `SELECT ${codeStatementsSql('b.raw', 'b.words')} AS ddl FROM …`
 * ```
 */
export function codeStatementsSql(raw: string, words: string): string {
  return `(CASE WHEN ${words} && ARRAY['function', 'procedure', 'routine', 'table', 'trigger', 'extension',
                                     'analyze', 'analyse', 'vacuum', 'cluster', 'reindex', 'program']::text[] THEN ARRAY(
             WITH RECURSIVE texts(t) AS (
               SELECT ${raw}
               UNION ALL
               SELECT m[2] FROM texts CROSS JOIN LATERAL regexp_matches(texts.t, ${sqlText(DOLLAR_STRING)}, 'g') AS m
             )
             SELECT s[1] FROM texts
              CROSS JOIN LATERAL (SELECT ${shapeSql('texts.t')} AS shaped OFFSET 0) AS x
              CROSS JOIN LATERAL (SELECT r FROM regexp_matches(x.shaped, ${sqlText(CODE_STATEMENT)}, 'gi') AS r
                                  UNION ALL
                                  SELECT r FROM regexp_matches(x.shaped, ${sqlText(MAINTENANCE_STATEMENT)}, 'gi') AS r) AS m(s))
           ELSE '{}' END)`
}

/**
 * SQL (a scalar subquery): where the body text `raw` makes a function (CREATE FUNCTION or
 * PROCEDURE), the words of the code (strings and comments out) in its dollar-quoted strings, the
 * bodies it makes; else none. Such a body runs with its callers' path, not its maker's: its names
 * are taken as resolving in any schema (review rev5 C1).
 *
 * @example
 * ```ts
 * `SELECT … FROM unnest(${madeWordsSql('b.raw', 'b.words')}) AS w(word)`
 * ```
 */
export function madeWordsSql(raw: string, words: string): string {
  return `(CASE WHEN ${words} && ARRAY['function', 'procedure']::text[]
                 AND ${shapeSql(raw)} ~* ${sqlText(`(?<![[:alnum:]_$])create${S}+(?:or${S}+replace${S}+)?(?:function|procedure)(?![[:alnum:]_$])`)}
           THEN ARRAY(
             WITH RECURSIVE texts(t) AS (
               SELECT m[2] FROM regexp_matches(${raw}, ${sqlText(DOLLAR_STRING)}, 'g') AS m
               UNION ALL
               SELECT m[2] FROM texts CROSS JOIN LATERAL regexp_matches(texts.t, ${sqlText(DOLLAR_STRING)}, 'g') AS m
             )
             SELECT DISTINCT w FROM texts CROSS JOIN LATERAL regexp_split_to_table(lower(${shapeSql('texts.t')}), '[^a-z0-9_]+') AS w
              WHERE w <> '')
           ELSE '{}' END)`
}

/** SQL: whether the statement `stmt` (of {@link codeStatementsSql}) is of a form read. */
export function codeStatementReadSql(stmt: string): string {
  return `(${stmt} ~* ${sqlText(READ_FORM)})`
}

/**
 * SQL (a subquery, LATERAL to `stmt`, one of {@link codeStatementsSql}): each schema that its SET
 * search_path names (`name`), as PostgreSQL reads it: quoted, as written; else in lower case.
 */
export function searchPathListSql(stmt: string): string {
  return `SELECT CASE WHEN n[1] ~ '^"' THEN replace(substr(n[1], 2, length(n[1]) - 2), '""', '"') ELSE lower(n[1]) END AS name
            FROM regexp_matches(${stmt}, ${sqlText(PATH_SET)}, 'gi') AS l
           CROSS JOIN LATERAL regexp_matches(l[1], ${sqlText(`(${NAME})`)}, 'g') AS n`
}

/**
 * SQL (an expression, LATERAL to `stmt`, one of {@link codeStatementsSql}): the name, without its
 * schema, of the function that an ALTER FUNCTION, PROCEDURE or ROUTINE gives a search path, as
 * PostgreSQL reads it (quoted, as written; else in lower case); NULL for any other statement.
 *
 * @example
 * ```ts
 * `SELECT ${alteredFunctionSql('d.stmt')} AS name FROM unnest(b.ddl) AS d(stmt)`
 * ```
 */
export function alteredFunctionSql(stmt: string): string {
  const name = `(regexp_match(${stmt}, ${sqlText(`^alter${S}+(?:function|procedure|routine)${S}+(?:${NAME}${S}*[.]${S}*){0,2}(${NAME})(?=${S}*[(]|${S}|$).*${PATH_SET}`)}, 'i'))[1]`
  return `(CASE WHEN ${name} ~ '^"' THEN replace(substr(${name}, 2, length(${name}) - 2), '""', '"') ELSE lower(${name}) END)`
}
