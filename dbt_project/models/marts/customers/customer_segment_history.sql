{#- Appended per refresh. Re-running an as-of date replaces that date's rows and no others:
    delete+insert on DuckDB, insert_overwrite of the as_of_date partition on Spark. -#}
{{
    config(
        materialized='incremental',
        unique_key='as_of_date',
        incremental_strategy=history_incremental_strategy(),
        partition_by=(['as_of_date'] if target.type == 'spark' else none),
        on_schema_change='append_new_columns',
    )
}}

select
    as_of_date,
    customer_code,
    r_score,
    f_score,
    m_score,
    segment,
    is_pareto,
    order_count,
    days_since_last_order,
    total_net_sales,
    total_gross_margin,
    p_alive,
    clv_12m,
    value_tier,
    cluster_id,
    cluster_name
from {{ ref('customer_single_view') }}
