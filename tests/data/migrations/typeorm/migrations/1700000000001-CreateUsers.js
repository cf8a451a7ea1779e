module.exports = class CreateUsers1700000000001 {
  async up(queryRunner) {
    await queryRunner.query(
      "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, role text NOT NULL DEFAULT 'member')",
    );
  }

  async down(queryRunner) {
    await queryRunner.query("DROP TABLE users");
  }
};
