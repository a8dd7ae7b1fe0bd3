"""The consumer inbox as a Django app: add ``"courier.consumer.django"`` to ``INSTALLED_APPS``.

``manage.py migrate`` then creates the ``courier_inbox`` table; handlers use
:class:`courier.consumer.django.inbox.DjangoInbox` with :func:`courier.consumer.idempotent`.
Needs Django 5.2+ (the table's primary key is ``(consumer, event_id)``).
"""
