"""Courier's outbox as a Django app: add ``"courier.outbox.django"`` to ``INSTALLED_APPS``.

Then ``python manage.py migrate`` creates the outbox table (``courier_outbox``, or the
``COURIER_OUTBOX_TABLE`` setting) on whatever database the project uses, and
``build_event(message).save()`` writes through the current connection inside ``@atomic``.
"""
