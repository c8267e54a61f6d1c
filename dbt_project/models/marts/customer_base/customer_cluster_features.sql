{#- Behavioural features for customer clustering, one row per customer with orders, as of the
    refresh's as-of date. Built on the per-customer tables (customer_summary for the lifetime
    metrics, customer_category_spend for the basket), so the order lines are scanned once, by them.
    Skewed counts and amounts are logged as ln(1 + x): zero stays zero and no customer is lost
    to ln(0). The category mix is pivoted with sum(case ...), which every engine runs. -#}
{%- set segments = [
    'Peripherals', 'Accessories', 'Notebook', 'Desktop', 'Storage', 'Networking'
] -%}

with buyers as (
    select
        customer_code,
        first_order_date,
        last_order_date,
        order_count,
        days_since_last_order,
        total_net_sales,
        total_gross_margin,
        avg_order_net_sales
    from {{ ref('customer_summary') }}
    where has_orders
),

segment_spend as (
    select
        customer_code,
        segment,
        sum(net_sales) as net_sales
    from {{ ref('customer_category_spend') }}
    group by customer_code, segment
),

category_mix as (
    select
        customer_code,
        {%- for segment in segments %}
        sum(case when segment = '{{ segment }}' then net_sales else 0 end)
            as {{ segment | lower }}_net_sales,
        {%- endfor %}
        sum(net_sales) as mix_net_sales
    from segment_spend
    group by customer_code
),

features as (
    select
        buyers.customer_code,
        customers.platform,
        customers.channel,
        buyers.order_count,
        buyers.days_since_last_order,
        {{ dbt.datediff('buyers.first_order_date', as_of_date(), 'day') }} as tenure_days,
        buyers.total_net_sales,
        buyers.avg_order_net_sales,
        -- Undefined without sales; 0 keeps the feature non-null (such customers are rare).
        coalesce(buyers.total_gross_margin / nullif(buyers.total_net_sales, 0), 0) as margin_rate,
        ln(1 + cast(buyers.days_since_last_order as double)) as log_recency,
        ln(1 + cast(buyers.order_count as double)) as log_frequency,
        -- greatest() because ln of a negative is an error on DuckDB and null on Spark.
        ln(1 + greatest(coalesce(cast(buyers.avg_order_net_sales as double), 0), 0))
            as log_avg_spend,
        {%- for segment in segments %}
        coalesce(
            category_mix.{{ segment | lower }}_net_sales / nullif(category_mix.mix_net_sales, 0), 0
        ) as share_{{ segment | lower }},
        {%- endfor %}
        {%- for column, value in [('platform', 'E-Commerce'), ('channel', 'Direct'),
                                  ('channel', 'Distributor'), ('channel', 'Retailer')] %}
        cast(case when customers.{{ column }} = '{{ value }}' then 1 else 0 end as integer)
            as is_{{ value | lower | replace('-', '_') }},
        {%- endfor %}
        {{ as_of_date() }} as as_of_date
    from buyers
    inner join {{ ref('dim_customer') }} as customers
        on buyers.customer_code = customers.customer_code
    left join category_mix
        on buyers.customer_code = category_mix.customer_code
)

select * from features
