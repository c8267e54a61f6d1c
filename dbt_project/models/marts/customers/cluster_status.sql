select * from {{ source('analytics', 'cluster_status') }}
