{#- SQL functions the marts need, created by on-run-start in schema `udf`.

    cw_hyp2f1(a, b, c, z): the Gaussian hypergeometric function ₂F₁ for 0 <= z < 1, used by the
    BG/NBD expected-purchases formula. The series for ₂F₁(r+x, b+x; a+b+x-1; z) converges slowly
    for frequent buyers (its terms first grow roughly like x·z), so the function applies Euler's
    transformation ₂F₁(a,b;c;z) = (1-z)^(c-a-b) ₂F₁(c-a, c-b; c; z) when it shrinks the first
    parameters, then sums terms until they fall below 1e-15 of the sum (at most 100000 terms). -#}
{% macro create_udfs() %}
    create schema if not exists udf;
    create or replace function udf.cw_hyp2f1(a double precision, b double precision,
                                             c double precision, z double precision)
    returns double precision
    language plpgsql immutable strict parallel safe
    as $fn$
    declare
        aa double precision := a;
        bb double precision := b;
        factor double precision := 1.0;
        term double precision := 1.0;
        total double precision := 1.0;
        n integer := 0;
    begin
        if z < 0 or z >= 1 then
            raise exception 'cw_hyp2f1 needs 0 <= z < 1, got %', z;
        end if;
        if abs(c - a) + abs(c - b) < abs(a) + abs(b) then
            factor := power(1.0 - z, c - a - b);
            aa := c - a;
            bb := c - b;
        end if;
        loop
            term := term * (aa + n) * (bb + n) / ((c + n) * (n + 1)) * z;
            total := total + term;
            n := n + 1;
            exit when abs(term) <= 1e-15 * abs(total) or n >= 100000;
        end loop;
        return factor * total;
    end;
    $fn$;

    {{ identity_components_udf() }}
{% endmacro %}

{#- udf.cw_identity_components(edges, scope, max_passes): connected components of the identity
    graph, as (node_key, component_key = the smallest node key of its component). `edges` holds
    one row per record: record_node text and neighbours text[] (the record itself among them).
    `scope` (null = every record) is a relation of node_key: only the records among them are read
    — the caller makes it a union of whole components, so the components found are whole too.

    Semi-naive label propagation: nodes are numbered in key order (so the smallest number is the
    smallest key and the passes compare 8-byte integers), every node starts with the smallest
    neighbour, and each pass offers the labels lowered in the previous pass to their neighbours
    only (an index on the edges finds them). Labels only decrease, so a pass that lowers nothing is
    the fixed point: every edge joins equal labels. Customers' components are small, so after the
    first pass the work is a few thousand rows, where fixed passes over every edge cost a full
    hash aggregate each; max_passes bounds pathological chains (the singular test
    assert_identity_resolution_converged then fails rather than merging half a component). -#}
{% macro identity_components_udf() %}
    drop function if exists udf.cw_identity_components(regclass, integer);
    create or replace function udf.cw_identity_components(edges regclass, scope regclass, max_passes integer)
    returns table (node_key text, component_key text)
    language plpgsql volatile
    as $fn$
    declare
        changed bigint;
        pass integer := 0;
    begin
        drop table if exists pg_temp.cw_pairs, pg_temp.cw_nodes, pg_temp.cw_edges, pg_temp.cw_labels,
            pg_temp.cw_changed, pg_temp.cw_offered;
        execute format('create temp table cw_pairs on commit drop as '
                       'select e.record_node as node_a, n.node_b from %s as e '
                       'cross join lateral unnest(e.neighbours) as n (node_b) %s',
                       edges, case when scope is null then ''
                                   else format('where e.record_node in (select s.node_key from %s as s)', scope) end);
        create temp table cw_nodes on commit drop as
            select k.node_key, row_number() over (order by k.node_key) as node_id
            from (select distinct p.node_b as node_key from cw_pairs as p) as k;  -- records are their own neighbours
        analyze cw_nodes;
        -- both directions, no self-loops: a node's own number is its starting label
        create temp table cw_edges on commit drop as
            select a.node_id as node_a, b.node_id as node_b
            from cw_pairs as p join cw_nodes as a on a.node_key = p.node_a join cw_nodes as b on b.node_key = p.node_b
            where a.node_id <> b.node_id;
        insert into cw_edges select e.node_b, e.node_a from cw_edges as e;
        create index on cw_edges (node_b);
        analyze cw_edges;
        create temp table cw_labels on commit drop as
            select n.node_id as node, least(n.node_id, min(e.node_b)) as label
            from cw_nodes as n left join cw_edges as e on e.node_a = n.node_id
            group by n.node_id;
        alter table cw_labels add primary key (node);
        create temp table cw_changed on commit drop as select l.node, l.label from cw_labels as l where l.label < l.node;
        loop
            exit when pass >= max_passes;
            pass := pass + 1;
            create temp table cw_offered on commit drop as
                select e.node_a as node, min(c.label) as label
                from cw_changed as c join cw_edges as e on e.node_b = c.node
                group by e.node_a;
            truncate cw_changed;
            with lowered as (
                update cw_labels as l set label = o.label from cw_offered as o
                where l.node = o.node and o.label < l.label
                returning l.node, l.label
            )
            insert into cw_changed select lowered.node, lowered.label from lowered;
            get diagnostics changed = row_count;
            drop table cw_offered;
            analyze cw_changed;
            exit when changed = 0;
        end loop;
        return query
            select n.node_key, c.node_key from cw_labels as l
            join cw_nodes as n on n.node_id = l.node join cw_nodes as c on c.node_id = l.label;
    end
    $fn$;
{% endmacro %}
