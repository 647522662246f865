{#- Select typed columns from a raw table that may not exist (a business without that source)
    or may lack some columns (a Metrica counter exporting fewer fields). Missing tables give an
    empty typed relation and missing columns give typed nulls, so every staging model compiles
    and builds for any combination of sources. `columns` is a list of (name, sql type) pairs. -#}
{% macro raw_source(source_name, table_name, columns) -%}
    {%- set src = source(source_name, table_name) -%}
    {%- set relation = none -%}
    {%- if execute -%}
        {%- set relation = adapter.get_relation(database=src.database, schema=src.schema, identifier=src.identifier) -%}
    {%- endif -%}
    {%- if relation is not none -%}
        {%- set existing = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
        {%- set missing = columns | map(attribute=0) | reject('in', existing) | list -%}
        {%- if missing | length == columns | length -%}
            {#- the table is there but none of its columns: introspection failed, never guess nulls -#}
            {{ exceptions.raise_compiler_error("raw_source: no columns found for " ~ relation ~ " (seen: " ~ existing ~ ")") }}
        {%- elif missing -%}
            {{ log("raw_source: " ~ relation ~ " lacks " ~ missing | join(", ") ~ "; typed nulls stand in", info=False) }}
        {%- endif %}
    select
        {%- for name, type in columns %}
        {% if name | lower in existing -%}
        cast({{ adapter.quote(name) }} as {{ type }})
        {%- else -%}
        cast(null as {{ type }})
        {%- endif %} as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ src }}
    {%- else %}
    select
        {%- for name, type in columns %}
        cast(null as {{ type }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    where false
    {%- endif -%}
{%- endmacro %}

{#- The metadata columns every raw table carries (docs/raw-layer.md). -#}
{% macro raw_meta_columns() -%}
    {{ return([('_batch_id', 'text'), ('_loaded_at', 'timestamptz'), ('_source_part', 'text')]) }}
{%- endmacro %}
