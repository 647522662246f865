{#- The customers a night changed, for the customer-level models that are built incrementally.

    A customer-level row (the customer's job evidence, say) is a function of everything the
    customer has: their identity nodes, orders, episodes, visits and survey answers. A night
    changes a few thousand customers of hundreds of thousands, so rebuilding every customer's
    rows each night was most of a new day's time (bench of session 11). int_customers_changed
    logs, night by night, every customer whose inputs may have changed; a customer-level model
    recomputes just those (customer_scope()).

    The hard half is the customer a row *left*: when a file order moves to another customer, or a
    node to another component, the customer it left must be recomputed too, and nothing current
    names it any more. So the incremental fact tables log the customers of the rows they delete
    (ops.customers_left, delete_stored_in_scope(..., log_customers=true)), the visits table logs
    the ClientIDs of the visits it replaces (ops.visit_clients_replaced, strategy replace_from),
    and the identity side is read off int_identity_nodes_resolved (int_customers_changed).
-#}

{#- on-run-start (not in the models' hooks: two models racing on `create table if not exists`
    fail one of them): the logs, and what each customer-level table has read. That is kept per
    table (its oid), not per model: a mart's table is carried from the publication before last
    (macros/carry_marts.sql), so the one a night builds on may be two nights behind the one it
    published last; a table built again from scratch starts afresh. -#}
{% macro customer_scope_tables() -%}
    create schema if not exists ops;
    create table if not exists ops.customers_left (
        customer_id text not null,
        left_at timestamptz not null default now()
    );
    create table if not exists ops.visit_clients_replaced (
        client_id text not null,
        replaced_at timestamptz not null default now()
    );
    create table if not exists ops.customer_scope_read (
        relation_oid oid primary key,
        model text not null,
        read_until timestamptz not null,
        run_date date not null,
        lookups_hash text
    );
    delete from ops.customer_scope_read as stale
    where not exists (select from pg_class where pg_class.oid = stale.relation_oid)
{%- endmacro %}

{#- What this table last read: a one-row relation (read_until, run_date, lookups_hash), empty
    when it has read nothing -#}
{% macro customer_scope_last_read() -%}
    (select read_until, run_date, lookups_hash from ops.customer_scope_read
     where relation_oid = cast('{{ this }}' as regclass))
{%- endmacro %}

{#- post-hook of the log and of every customer-level model: read up to now (every entry committed
    before its transaction began, as dbt builds the log first), for tonight's run date -#}
{% macro customer_scope_read(lookups=[]) -%}
    insert into ops.customer_scope_read (relation_oid, model, read_until, run_date, lookups_hash)
    values (cast('{{ this }}' as regclass), '{{ this.identifier }}', now(), {{ run_date() }},
        {% if lookups %}{{ lookups_hash(lookups) }}{% else %}null{% endif %})
    on conflict (relation_oid) do update
    set read_until = excluded.read_until, run_date = excluded.run_date, lookups_hash = excluded.lookups_hash
{%- endmacro %}

{#- int_customers_changed, post-hook: what it read is done with. The deletion logs are emptied up
    to its transaction; its own rows that every customer-level table has read go (a table that
    stops reading keeps them, which costs space, not correctness). -#}
{% macro customers_changed_logged() -%}
    {{ customer_scope_read() }};
    delete from ops.customers_left where left_at < now();
    delete from ops.visit_clients_replaced where replaced_at < now();
    delete from {{ this }}
    where changed_at < (
        select min(read_until) from ops.customer_scope_read where model <> '{{ this.identifier }}'
    )
{%- endmacro %}

{#- A customer-level model's pre-hook: the customers int_customers_changed logged since this
    table last read the log, into pg_temp.customer_scope, and their stored rows deleted; the
    model's query then inserts what they are now (strategy append).
    - lookups: small relations (seeds) the model reads, which no log records: when their content
      differs from what the stored rows were built from, every customer is in the scope;
    - also: SQL of more customer ids, for what only this model depends on; it may read
      `last_read.run_date`, the run date the stored rows were computed for.
    Without a stored table the model is built whole and no scope is made. -#}
{% macro customer_scope(lookups=[], also=none) -%}
    drop table if exists pg_temp.customer_scope;
    {%- if is_incremental() %}
    create temp table customer_scope on commit drop as
    with last_read as (
        select coalesce(max(read_until), '-infinity') as read_until,
            coalesce(max(run_date), '-infinity') as run_date,
            max(lookups_hash) as lookups_hash
        from {{ customer_scope_last_read() }} as stored
    )
    select customer_id
    from {{ ref('int_customers_changed') }}
    where changed_at > (select read_until from last_read)
    {%- if lookups %}
    union
    select customer_id from {{ this }}
    where (select lookups_hash from last_read) is distinct from {{ lookups_hash(lookups) }}
    union
    select customer_id from {{ ref('int_customer_nodes_resolved') }}
    where (select lookups_hash from last_read) is distinct from {{ lookups_hash(lookups) }}
    {%- endif %}
    {%- if also %}
    union
    {{ also }}
    {%- endif %};
    {{ delete_stored_in_scope('customer_scope', 'customer_id') }}
    {%- endif %}
{%- endmacro %}

{#- the content of small relations, as one hash -#}
{% macro lookups_hash(relations) -%}
    md5(concat_ws('|'
    {%- for relation in relations %},
        (select md5(coalesce(string_agg(cast(t as text), ',' order by cast(t as text)), '')) from {{ relation }} as t)
    {%- endfor %}
    ))
{%- endmacro %}

{#- In the model's query: keep only the scope's customers (on an incremental run; a unit test,
    which has no `this`, is not one) -#}
{% macro in_customer_scope(column) -%}
    {%- if this is not none and is_incremental() %}{{ column }} in (select customer_id from pg_temp.customer_scope){% else %}true{% endif -%}
{%- endmacro %}

{#- customer_episodes, customer_scope(also=...): the customers with an order or a contact that the
    run date's move carried across the start of a 6- or 12-month window (a day's move: a day's
    rows at each edge) -#}
{% macro customer_episodes_windows_moved() -%}
    {%- for relation, column in [(ref('int_orders_unified'), 'order_date'),
                                 (ref('int_customer_interactions_resolved'), 'occurred_date')] %}
    select moved.customer_id
    from {{ relation }} as moved
    cross join last_read
    where
        {%- for months in [6, 12] %}
        {{ "or " if not loop.first }}(moved.{{ column }} > least(last_read.run_date, {{ run_date() }}) - interval '{{ months }} months'
            and moved.{{ column }} <= greatest(last_read.run_date, {{ run_date() }}) - interval '{{ months }} months')
        {%- endfor %}
    {{ "union" if not loop.last }}
    {%- endfor %}
{%- endmacro %}
