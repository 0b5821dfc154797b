"""The search index: one document per record (weighted tsvector, folded title for trigrams), the
tenant's vocabulary for "did you mean", tombstones of deleted records, per-tenant configuration
and indexing state, jobs, processed events and the outbox.

Revision ID: search_0001
Revises:
"""

from alembic import context, op

from services.kernel.consumers import create_processed_events
from services.kernel.migrations import TENANT_PREDICATE, create_jobs, create_outbox, enable_tenant_isolation

revision = "search_0001"
down_revision = None

TYPES = ("contact", "account", "lead", "deal", "activity")


def upgrade() -> None:
    for ext in ("pg_trgm", "unaccent", "btree_gin"):
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
    # unaccent() is only STABLE (its dictionary could change); pinning the dictionary makes it
    # safe in generated columns and index expressions (as contacts.search_text does).
    op.execute(
        """
        CREATE FUNCTION search.fold(t text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, coalesce(t, ''))) $$"""
    )
    # The weighted vector of a record (jsonb, API field names): for each weight A to D the text of
    # its fields (dotted paths into objects; arrays and objects give their values), folded, with
    # the parts of emails, domains and other dotted words as words too (PostgreSQL's parser keeps
    # `ann@example.com` and `example.com` whole: `ann` and `example` must find them). PL/pgSQL
    # because its expressions are planned once per session, several times faster per record
    # than nested SQL functions.
    op.execute(
        r"""
        CREATE FUNCTION search.weigh(data jsonb, a text[], b text[], c text[], d text[]) RETURNS tsvector
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
        DECLARE
            result tsvector := '';
            fields text[];
            path text;
            v jsonb;
            part text;
            body text;
        BEGIN
            FOR n IN 1..4 LOOP
                fields := CASE n WHEN 1 THEN a WHEN 2 THEN b WHEN 3 THEN c ELSE d END;
                body := '';
                FOREACH path IN ARRAY coalesce(fields, '{}') LOOP
                    v := data #> string_to_array(path, '.');
                    CONTINUE WHEN v IS NULL;
                    part := CASE jsonb_typeof(v)
                        WHEN 'array' THEN (SELECT string_agg(e #>> '{}', ' ') FROM jsonb_array_elements(v) AS e)
                        WHEN 'object' THEN (SELECT string_agg(e #>> '{}', ' ') FROM jsonb_each(v) AS x(k, e))
                        WHEN 'null' THEN NULL
                        ELSE v #>> '{}' END;
                    IF part <> '' THEN
                        body := body || ' ' || part;
                    END IF;
                END LOOP;
                CONTINUE WHEN body = '';
                body := search.fold(left(body, 100000));
                IF body ~ '[@._+/:-]' THEN
                    body := body || ' ' || coalesce((SELECT string_agg(regexp_replace(m[1], '[@._+/:-]+', ' ', 'g'), ' ')
                                                     FROM regexp_matches(body, '(\S*[@._+/:-]\S*)', 'g') AS m), '');
                END IF;
                result := result || setweight(to_tsvector('simple'::regconfig, body),
                                              (CASE n WHEN 1 THEN 'A' WHEN 2 THEN 'B' WHEN 3 THEN 'C' ELSE 'D' END)::"char");
            END LOOP;
            RETURN result;
        END $$"""
    )
    types = ", ".join(f"'{t}'" for t in TYPES)
    op.execute(
        f"""
        CREATE TABLE search.documents (
            tenant_id uuid NOT NULL,
            type text NOT NULL CHECK (type IN ({types})),
            id uuid NOT NULL,
            owner_id uuid,
            title text NOT NULL DEFAULT '',
            subtitle text NOT NULL DEFAULT '',
            stage text NOT NULL DEFAULT '',
            status text NOT NULL DEFAULT '',
            tags text[] NOT NULL DEFAULT '{{}}',
            data jsonb NOT NULL DEFAULT '{{}}',
            tsv tsvector NOT NULL,
            title_folded text GENERATED ALWAYS AS (search.fold(title)) STORED,
            created_at timestamptz,
            -- The record's own updatedAt (or its event's time): an older event never overwrites it.
            updated_at timestamptz NOT NULL,
            indexed_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_documents PRIMARY KEY (tenant_id, type, id)
        )"""
    )
    op.execute("CREATE INDEX ix_documents_tsv ON search.documents USING gin (tenant_id, tsv)")
    op.execute("CREATE INDEX ix_documents_title_trgm ON search.documents USING gin (tenant_id, title_folded gin_trgm_ops)")
    op.execute("CREATE INDEX ix_documents_tags ON search.documents USING gin (tenant_id, tags)")
    # Autocomplete's first step: titles starting with a prefix, in title order (byte order, so the
    # same index serves LIKE 'prefix%' whatever the database's collation).
    op.execute('CREATE INDEX ix_documents_title_prefix ON search.documents (tenant_id, (title_folded COLLATE "C"), id)')
    for name, columns in (
        ("owner", "tenant_id, type, owner_id"),
        ("updated", "tenant_id, updated_at DESC, id"),
        ("stage", "tenant_id, stage"),
        ("status", "tenant_id, status"),
    ):
        op.execute(f"CREATE INDEX ix_documents_{name} ON search.documents ({columns})")
    # The words of the tenant's documents with the number of documents holding each: the
    # vocabulary "did you mean" picks corrections from (words of letters, 3 to 40 long).
    op.execute(
        """
        CREATE TABLE search.terms (
            tenant_id uuid NOT NULL,
            term text NOT NULL,
            documents int NOT NULL DEFAULT 0,
            CONSTRAINT pk_terms PRIMARY KEY (tenant_id, term)
        )"""
    )
    op.execute("CREATE INDEX ix_terms_trgm ON search.terms USING gin (tenant_id, term gin_trgm_ops)")
    # Swapped letters leave short words few trigrams in common (`jhon`/`john` share one):
    # those corrections are looked for among words of the same initial and about the same length.
    op.execute("CREATE INDEX ix_terms_initial ON search.terms (tenant_id, left(term, 1), length(term))")
    op.execute(
        """
        CREATE FUNCTION search.count_terms() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            added text[] := '{}';
            removed text[] := '{}';
        BEGIN
            IF TG_OP = 'INSERT' THEN
                added := tsvector_to_array(NEW.tsv);
            ELSIF TG_OP = 'DELETE' THEN
                removed := tsvector_to_array(OLD.tsv);
            ELSE
                added := ARRAY(SELECT unnest(tsvector_to_array(NEW.tsv)) EXCEPT SELECT unnest(tsvector_to_array(OLD.tsv)));
                removed := ARRAY(SELECT unnest(tsvector_to_array(OLD.tsv)) EXCEPT SELECT unnest(tsvector_to_array(NEW.tsv)));
            END IF;
            IF cardinality(added) > 0 THEN
                INSERT INTO search.terms AS t (tenant_id, term, documents)
                SELECT NEW.tenant_id, w, 1 FROM unnest(added) AS w
                WHERE w ~ '^[[:alpha:]][[:alnum:]]{2,39}$' ORDER BY w
                ON CONFLICT (tenant_id, term) DO UPDATE SET documents = t.documents + 1;
            END IF;
            IF cardinality(removed) > 0 THEN
                UPDATE search.terms SET documents = documents - 1
                WHERE tenant_id = OLD.tenant_id AND term = ANY(removed) AND documents > 0;
            END IF;
            RETURN NULL;
        END $$"""
    )
    op.execute(
        "CREATE TRIGGER documents_terms AFTER INSERT OR DELETE OR UPDATE OF tsv ON search.documents "
        "FOR EACH ROW EXECUTE FUNCTION search.count_terms()"
    )
    # Deleted records: a late event about one (redelivered, or overtaken by the delete) must
    # not bring it back.
    op.execute(
        f"""
        CREATE TABLE search.tombstones (
            tenant_id uuid NOT NULL,
            type text NOT NULL CHECK (type IN ({types})),
            id uuid NOT NULL,
            updated_at timestamptz NOT NULL,
            deleted_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_tombstones PRIMARY KEY (tenant_id, type, id)
        )"""
    )
    op.execute("CREATE INDEX ix_tombstones_deleted ON search.tombstones (tenant_id, deleted_at)")
    op.execute(
        """
        CREATE TABLE search.configs (
            tenant_id uuid PRIMARY KEY,
            config jsonb NOT NULL,
            updated_by uuid,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute(
        """
        CREATE TABLE search.index_state (
            tenant_id uuid PRIMARY KEY,
            last_event_at timestamptz,
            last_event_id text NOT NULL DEFAULT '',
            last_applied_at timestamptz,
            events_applied bigint NOT NULL DEFAULT 0
        )"""
    )
    for table in ("documents", "terms", "tombstones", "configs", "index_state"):
        enable_tenant_isolation(op, f"search.{table}")
    # Row-level security cannot use an index for operators that are not LEAKPROOF, and no
    # full-text or trigram operator is: under it every search is a sequential scan. Reads
    # therefore go through these views, which hold the same tenant predicate and run with
    # their owner's rights (the migration role, which owns the tables): the predicate stays in
    # the database and the GIN indexes serve `@@`, `%` and `<%`. The runtime role still meets
    # the policies on the tables themselves (it writes there), and CHECK OPTION keeps writes
    # through the views inside the tenant. When the runtime role is the owner (one database
    # role for everything) the policies stay forced on it: correct, only slower.
    runtime_role = context.config.attributes.get("crm_runtime_role", "")
    for table in ("documents", "terms"):
        if runtime_role:
            op.execute(f"ALTER TABLE search.{table} NO FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE VIEW search.tenant_{table} AS SELECT * FROM search.{table} "
            f"WHERE {TENANT_PREDICATE} WITH LOCAL CHECK OPTION"
        )
    create_jobs(op, "search")
    create_processed_events(op, "search")
    create_outbox(op, "search")


def downgrade() -> None:
    for view in ("tenant_terms", "tenant_documents"):
        op.execute(f"DROP VIEW search.{view}")
    for table in ("outbox", "processed_events", "job_queue", "jobs", "index_state", "configs", "tombstones",
                  "terms", "documents"):
        op.execute(f"DROP TABLE search.{table}")
    for fn in ("outbox_notify()", "count_terms()", "weigh(jsonb, text[], text[], text[], text[])", "fold(text)"):
        op.execute(f"DROP FUNCTION search.{fn}")
