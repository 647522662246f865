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
    fail one of them): the logs, and what each customer-level model has read -#}
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
        model text primary key,
        read_until timestamptz not null,
        run_date date
    );
    create table if not exists ops.customer_scope_lookups (
        model text primary key,
        lookups_hash text not null
    )
{%- endmacro %}

{#- int_customers_changed, post-hook: what it read is done with. The deletion logs are emptied up
    to its transaction; its own rows that every customer-level model has read go (a model that
    stops reading keeps them, which costs space, not correctness). -#}
{% macro customers_changed_logged() -%}
    insert into ops.customer_scope_read (model, read_until, run_date)
    values ('{{ this.identifier }}', now(), {{ run_date() }})
    on conflict (model) do update set read_until = excluded.read_until, run_date = excluded.run_date;
    delete from ops.customers_left where left_at < now();
    delete from ops.visit_clients_replaced where replaced_at < now();
    delete from {{ this }}
    where changed_at < (
        select min(read_until) from ops.customer_scope_read where model <> '{{ this.identifier }}'
    )
{%- endmacro %}

{#- A customer-level model's pre-hook: the customers int_customers_changed logged since this
    model last read the log, into pg_temp.customer_scope, and their stored rows deleted; the
    model's query then inserts what they are now (strategy append). `lookups`: small relations
    (seeds) the model reads, which no log records: when their content differs from what the
    stored rows were built from, every customer is in the scope. Without a stored table the model
    is built whole and no scope is made. -#}
{% macro customer_scope(lookups=[]) -%}
    drop table if exists pg_temp.customer_scope;
    {%- if is_incremental() %}
    create temp table customer_scope on commit drop as
    select customer_id
    from {{ ref('int_customers_changed') }}
    where changed_at > coalesce(
        (select read_until from ops.customer_scope_read where model = '{{ this.identifier }}'),
        '-infinity')
    {%- if lookups %}
    union
    select customer_id from {{ this }}
    union
    select customer_id from {{ ref('int_customer_nodes_resolved') }}
    where not exists (
        select from ops.customer_scope_lookups as used
        where used.model = '{{ this.identifier }}' and used.lookups_hash = {{ lookups_hash(lookups) }}
    )
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

{#- ... and its post-hook: the log is read up to now (every entry committed before this model's
    transaction began, as dbt builds the log first) -#}
{% macro customer_scope_read(lookups=[]) -%}
    insert into ops.customer_scope_read (model, read_until) values ('{{ this.identifier }}', now())
    on conflict (model) do update set read_until = excluded.read_until;
    {%- if lookups %}
    insert into ops.customer_scope_lookups (model, lookups_hash)
    values ('{{ this.identifier }}', {{ lookups_hash(lookups) }})
    on conflict (model) do update set lookups_hash = excluded.lookups_hash
    {%- endif %}
{%- endmacro %}

{#- In the model's query: keep only the scope's customers (on an incremental run; a unit test,
    which has no `this`, is not one) -#}
{% macro in_customer_scope(column) -%}
    {%- if this is not none and is_incremental() %}{{ column }} in (select customer_id from pg_temp.customer_scope){% else %}true{% endif -%}
{%- endmacro %}
