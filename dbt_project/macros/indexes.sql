{#- post-hook: an index dbt's `indexes` config would not add. dbt creates those only when it
    creates the table, so a table that an earlier version built (a model made incremental, a
    snapshot) would never get one; `if not exists` by name makes this a no-op after the first run. -#}
{% macro index_if_missing(suffix, columns, where=none) -%}
    create index if not exists {{ this.identifier }}_{{ suffix }} on {{ this }} ({{ columns | join(', ') }})
    {%- if where %} where {{ where }}{% endif %}
{%- endmacro %}
